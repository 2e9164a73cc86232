"""Dashboard speed on a 50,000-record store: first page render and a filter change.

Run: ``python -m bench.bench_dashboard`` (set ``KEA_BENCH_DB`` to reuse a store built
before; otherwise a fictional factory store is built in a temporary folder, ~1 min).
Goals (issue 4): the first page renders in < 2 s, a filter change answers in < 0.5 s.

Timings are server side: a cold ``AppTest`` run of the Overview page (script plus every
query it makes, caches empty), then a filter change on the Studies page (uncached: a
filter the session has not seen), and the raw query calls behind each, best of a few.
The browser's own drawing time is not included.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboard" / "app.py"
N = 50_000
GOAL_FIRST_S = 2.0
GOAL_FILTER_S = 0.5


def _store(tmp: Path) -> Path:
    given = os.environ.get("KEA_BENCH_DB")
    if given and Path(given).is_file():
        return Path(given)
    sys.path.insert(0, str(ROOT / "tests"))
    from factories import make_store

    t = time.perf_counter()
    path = make_store(tmp / "bench.sqlite", n=N, seed=50)
    print(f"built {N:,}-record store in {time.perf_counter() - t:.1f} s")
    return path


def _time(fn: Callable[[], Any], rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _query_timings(db: Path) -> dict[str, float]:
    from pipeline import query
    from pipeline.query import StudyFilter

    conn = query.connect(db)
    base = StudyFilter()
    ptsd_rct = StudyFilter(conditions=("ptsd",), designs=("rct",))
    calls: dict[str, Callable[[], Any]] = {
        "headline": lambda: query.headline(conn),
        "evidence_map": lambda: query.evidence_map(conn, base),
        "outcome_summary": lambda: query.outcome_summary(conn, base),
        "timeline": lambda: query.timeline(conn, base),
        "breakdown_drug": lambda: query.breakdown(conn, base, "drug"),
        "breakdown_routes": lambda: query.breakdown(conn, base, "routes"),
        "prisma_flow": lambda: query.prisma_flow(conn),
        "count_ptsd_rct": lambda: query.count_studies(conn, ptsd_rct),
        "list_ptsd_rct": lambda: query.list_studies(conn, ptsd_rct, limit=200),
        "count_all": lambda: query.count_studies(conn, base),
        "list_all_page1": lambda: query.list_studies(conn, base, limit=200),
        "search_fts": lambda: query.list_studies(conn, StudyFilter(search="remission"), limit=200),
    }
    out = {name: _time(fn) for name, fn in calls.items()}
    conn.close()
    return out


def _app_timings(db: Path) -> dict[str, float]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    os.environ["KEA_DB"] = str(db)
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=120)
    t = time.perf_counter()
    at.run()
    first = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]

    t = time.perf_counter()
    at.run()
    rerun_cached = time.perf_counter() - t

    at.switch_page("views/studies.py")
    t = time.perf_counter()
    at.run()
    studies_first = time.perf_counter() - t

    at.multiselect(key="f_conditions").set_value(["ptsd"])
    t = time.perf_counter()
    at.run()
    filter_condition = time.perf_counter() - t

    at.multiselect(key="f_designs").set_value(["rct"])
    t = time.perf_counter()
    at.run()
    filter_design = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]

    at.multiselect(key="f_designs").set_value([])
    at.run()
    at.multiselect(key="f_designs").set_value(["rct"])
    t = time.perf_counter()
    at.run()
    filter_seen_before = time.perf_counter() - t

    pmid = at.selectbox(key="st_pmid").options[1].split(" · ")[0]
    at.selectbox(key="st_pmid").set_value(pmid)
    t = time.perf_counter()
    at.run()
    open_study = time.perf_counter() - t
    assert not at.exception, [e.value for e in at.exception]
    return {
        "open_study_s": open_study,
        "overview_first_render_s": first,
        "overview_rerun_cached_s": rerun_cached,
        "studies_first_render_s": studies_first,
        "filter_change_condition_s": filter_condition,
        "filter_change_design_s": filter_design,
        "filter_change_seen_before_s": filter_seen_before,
    }


def run() -> dict[str, Any]:
    """Measure, print a short table, return the numbers."""
    with tempfile.TemporaryDirectory() as tmp:
        db = _store(Path(tmp))
        queries = _query_timings(db)
        app = _app_timings(db)
    first = app["overview_first_render_s"]
    change = max(app["filter_change_condition_s"], app["filter_change_design_s"])
    result = {
        "records": N,
        "app": app,
        "queries_s": queries,
        "first_page_s": first,
        "filter_change_s": change,
        "first_page_ok": first < GOAL_FIRST_S,
        "filter_change_ok": change < GOAL_FILTER_S,
    }
    print(f"dashboard on {N:,} records (server side, AppTest)")
    for k, v in app.items():
        print(f"  {k:30s} {v * 1000:8.0f} ms")
    print("query calls (best of 3):")
    for k, v in queries.items():
        print(f"  {k:30s} {v * 1000:8.0f} ms")
    print(
        f"first page {first:.2f} s (goal < {GOAL_FIRST_S} s): "
        f"{'ok' if result['first_page_ok'] else 'MISSED'}"
    )
    print(
        f"filter change {change:.2f} s (goal < {GOAL_FILTER_S} s): "
        f"{'ok' if result['filter_change_ok'] else 'MISSED'}"
    )
    return result


if __name__ == "__main__":
    run()
