"""The Overview's charts as plain Vega-Lite specs (pure dicts, no streamlit, no altair).

Why not altair: building these three charts with altair validated every channel against
the Vega-Lite JSON schema on each rerun (~0.2 s of a 0.23 s Overview rerun at 50,000
records) and its import cost ~0.3 s at start. The browser draws the same Vega-Lite.
"""

from __future__ import annotations

from typing import Any

Spec = dict[str, Any]

OUTCOME_COLOURS = ("#2e7d32", "#c62828", "#f9a825", "#9e9e9e")
CELL = "cell"  # the heatmap's point selection: {condition, design} of the clicked cell


def _nominal(field: str, **kw: Any) -> Spec:
    return {"field": field, "type": "nominal", **kw}


def evidence_map(design_sort: list[str], n_conditions: int, max_studies: int) -> Spec:
    """Condition × design heatmap with counts; a click selects a cell (param ``cell``)."""
    x = _nominal(
        "Design",
        sort=design_sort,
        title=None,
        axis={"labelAngle": -30, "labelLimit": 200, "labelOverlap": False},
    )
    y = _nominal("Condition", title=None)
    return {
        "height": 70 * max(1, n_conditions),
        "layer": [
            {
                "mark": {"type": "rect"},
                "params": [
                    {"name": CELL, "select": {"type": "point", "fields": ["condition", "design"]}}
                ],
                "encoding": {
                    "x": x,
                    "y": y,
                    "color": {
                        "field": "studies",
                        "type": "quantitative",
                        "scale": {"scheme": "blues"},
                        "title": "Studies",
                    },
                    "tooltip": [
                        _nominal("Condition"),
                        _nominal("Design"),
                        {"field": "studies", "type": "quantitative", "title": "Studies"},
                    ],
                    "opacity": {"condition": {"param": CELL, "value": 1.0}, "value": 0.6},
                },
            },
            {
                "mark": {"type": "text", "fontSize": 13},
                "encoding": {
                    "x": {"field": "Design", "type": "nominal", "sort": design_sort},
                    "y": _nominal("Condition"),
                    "text": {"field": "studies", "type": "quantitative"},
                    "color": {
                        "condition": {
                            "test": f"datum.studies > {max_studies / 2!r}",
                            "value": "white",
                        },
                        "value": "black",
                    },
                },
            },
        ],
    }


def outcome_split(design_sort: list[str], outcome_order: list[str]) -> Spec:
    """Share of each outcome direction within each condition × design cell."""
    return {
        "mark": {"type": "bar"},
        "height": {"step": 22},
        "encoding": {
            "x": {
                "aggregate": "sum",
                "field": "studies",
                "type": "quantitative",
                "stack": "normalize",
                "title": "Share of studies",
                "axis": {"format": "%"},
            },
            "y": _nominal(
                "Design",
                sort=design_sort,
                title=None,
                axis={"labelOverlap": False, "labelLimit": 220},
            ),
            "row": _nominal(
                "Condition", title=None, header={"labelAngle": 0, "labelAlign": "left"}
            ),
            "color": _nominal(
                "Outcome",
                scale={"domain": outcome_order, "range": list(OUTCOME_COLOURS)},
            ),
            "tooltip": [
                _nominal("Condition"),
                _nominal("Design"),
                _nominal("Outcome"),
                {"field": "studies", "type": "quantitative", "title": "Studies"},
            ],
        },
    }


def timeline(design_order: list[str]) -> Spec:
    """Studies per publication year, stacked by design."""
    return {
        "mark": {"type": "bar"},
        "height": 260,
        "encoding": {
            "x": {"field": "year", "type": "ordinal", "title": None},
            "y": {"field": "studies", "type": "quantitative", "title": "Studies"},
            "color": _nominal("Design", sort=design_order),
            "tooltip": [
                {"field": "year", "type": "ordinal", "title": "Year"},
                _nominal("Design"),
                {"field": "studies", "type": "quantitative", "title": "Studies"},
            ],
        },
    }


def selected_cell(event: Any) -> tuple[str | None, str | None]:
    """(condition, design) of the clicked heatmap cell in a chart's selection event."""
    sel = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    chosen = (sel or {}).get(CELL) or []
    if not chosen:
        return None, None
    return chosen[0].get("condition"), chosen[0].get("design")
