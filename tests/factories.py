"""Build test stores of clearly fictional Articles + labels (no third-party text).

``make_store(path, n=..., seed=...)`` is shared by query/export/dashboard tests and the
benchmarks; ``make_records`` returns the same records in memory so a test can work out
expected counts in plain Python and compare them with what the SQL answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.labels import LABELS, VOCAB, Label
from pipeline.records import AbstractSection, Article, Author, MeshHeading
from pipeline.store import Store, content_hash

CONDITIONS = VOCAB["conditions"]
SUBGROUPS = VOCAB["subgroups"]
DESIGNS = VOCAB["design"]
OUTCOMES = VOCAB["outcome"]
DRUGS = VOCAB["drug"]
ROUTES = VOCAB["routes"]
COMPARATORS = VOCAB["comparator"]

BASE_PMID = 90_000_000
MODEL_VERSION = "factory-1"

_SURNAMES = (
    "Quillfeather",
    "Brindlecombe",
    "Otterbury",
    "Fenwhistle",
    "Marrowdale",
    "Ashgrove",
    "Tindlewick",
    "Pemberhollow",
    "Caskwright",
    "Wendimoor",
)
_GIVEN = ("Ada", "Bram", "Cleo", "Dorian", "Elspeth", "Fenn", "Greta", "Hollis")
_WORDS = (
    "ketamine",
    "esketamine",
    "arketamine",
    "depression",
    "anxiety",
    "ptsd",
    "infusion",
    "intranasal",
    "placebo",
    "midazolam",
    "remission",
    "response",
)
_JOURNALS = (
    ("Journal of Invented Psychiatry", "J Invent Psychiatry"),
    ("Imaginary Mood Research", "Imag Mood Res"),
    ("Fictional Neuropharmacology Letters", "Fict Neuropharmacol Lett"),
)


@dataclass
class Record:
    article: Article
    labels: dict[str, Any] | None  # None = never classified
    deleted: bool = False


def _article(i: int, rng: random.Random) -> Article:
    pmid = str(BASE_PMID + i)
    year = rng.randint(2000, 2025)
    month, day = rng.randint(1, 12), rng.randint(1, 28)
    journal, iso = rng.choice(_JOURNALS)
    n_auth = rng.randint(0, 4)
    authors = [
        Author(last_name=rng.choice(_SURNAMES), fore_name=f"{g} {g[0]}", initials=f"{g[0]}{g[0]}")
        for g in rng.sample(_GIVEN, n_auth)
    ]
    if rng.random() < 0.05:
        authors.append(Author(collective_name="Imaginary Ketamine Study Group"))
    words = rng.sample(_WORDS, 4)
    first = rng.randint(1, 900)
    return Article(
        pmid=pmid,
        title=f"Fictional study {i} of {' and '.join(words[:2])}",
        abstract_sections=[
            AbstractSection(
                text=f"We invented record {i} about {words[2]}.",
                label="BACKGROUND",
                category="BACKGROUND",
            ),
            AbstractSection(
                text=f"Made-up findings on {words[3]}.", label="RESULTS", category="RESULTS"
            ),
        ],
        authors=authors,
        journal=journal,
        journal_iso=iso,
        volume=str(rng.randint(1, 60)) if rng.random() < 0.9 else None,
        issue=str(rng.randint(1, 12)) if rng.random() < 0.8 else None,
        pages=f"{first}-{first + rng.randint(1, 20)}" if rng.random() < 0.85 else None,
        pub_year=year,
        pub_date=f"{year}-{month:02d}-{day:02d}",
        publication_types=["Journal Article"],
        mesh=[MeshHeading(descriptor="Ketamine", ui="D007649", major=True)],
        keywords=[words[0]],
        languages=["eng"],
        doi=f"10.0000/fict.{i}" if rng.random() < 0.8 else None,
        pmcid=f"PMC{9_000_000 + i}" if rng.random() < 0.3 else None,
        entrez_date=f"{year}-{month:02d}-{day:02d}",
        revised_date=f"{year}-{month:02d}-{day:02d}",
        retracted=rng.random() < 0.03,
    )


def _labels(a: Article, rng: random.Random) -> dict[str, Any]:
    in_scope = rng.random() < 0.7
    design = rng.choice(DESIGNS)
    conds = sorted(rng.sample(CONDITIONS, rng.randint(1, 2))) if in_scope else []
    confidence = {
        "relevance": round(rng.uniform(0.5, 1.0), 3),
        "design": round(rng.uniform(0.3, 1.0), 3),
    }
    out = {
        "pmid": a.pmid,
        "model_version": MODEL_VERSION,
        "content_hash": content_hash(a),
        "relevance": "in_scope" if in_scope else "off_topic",
        "conditions": conds,
        "subgroups": sorted(rng.sample(SUBGROUPS, rng.randint(0, 2))) if in_scope else [],
        "design": design,
        "outcome": rng.choice(OUTCOMES) if in_scope else "not_reported",
        "sample_size": rng.choice([None, rng.randint(5, 2000)])
        if design != "preclinical"
        else None,
        "drug": rng.choice((*DRUGS, None)),
        "routes": sorted(rng.sample(ROUTES, rng.randint(0, 2))),
        "comparator": rng.choice((*COMPARATORS, None)),
        "psychotherapy": rng.random() < 0.1,
        "confidence": confidence,
        "evidence": {"design": "made-up sentence"},
        "needs_review": min(confidence.values()) < 0.5,
    }
    for lab in LABELS:  # a label added to the registry gets values too (drawn last: the
        if lab.name not in out:  # draws above, and so every existing store, stay the same)
            out[lab.name] = _any_value(lab, rng)
    return out


def _any_value(lab: Label, rng: random.Random) -> Any:
    """A random value a label can take, None (unknown) one time in five."""
    if lab.is_set:
        return sorted(rng.sample(lab.vocabulary, rng.randint(0, min(2, len(lab.vocabulary)))))
    if rng.random() < 0.2:
        return None
    if lab.kind == "integer":
        return rng.randint(1, 2000)
    if lab.kind == "boolean":
        return rng.random() < 0.3
    return rng.choice(lab.vocabulary)


def make_records(
    n: int = 200, seed: int = 0, *, labelled: float = 0.9, deleted: float = 0.02
) -> list[Record]:
    """Deterministic fictional records; ``labelled``/``deleted`` are the shares of each."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a = _article(i, rng)
        lab = _labels(a, rng) if rng.random() < labelled else None
        out.append(Record(a, lab, deleted=rng.random() < deleted))
    return out


def make_store(
    path: str | Path,
    n: int = 200,
    seed: int = 0,
    *,
    labelled: float = 0.9,
    deleted: float = 0.02,
    demo: bool = False,
    corrections: int = 3,
    query: str = "ketamine[tiab] (fictional factory query)",
) -> Path:
    """Write ``make_records(n, seed)`` to a new store (see ``write_store``)."""
    records = make_records(n, seed, labelled=labelled, deleted=deleted)
    return write_store(path, records, demo=demo, corrections=corrections, query=query)


def write_store(
    path: str | Path,
    records: list[Record],
    *,
    demo: bool = False,
    corrections: int = 3,
    query: str = "ketamine[tiab] (fictional factory query)",
) -> Path:
    """Write records to a new store with one completed crawl run.

    The first ``corrections`` labelled records get a human-verified design, as
    ``kea label`` would record it; their ``labels`` dicts are updated to match, so
    tests can compute expectations from ``records``.
    """
    path = Path(path)
    with Store(path) as store:
        run = store.start_run(query, "http://127.0.0.1:0/fictional", "full", is_demo=demo)
        for start in range(0, len(records), 5000):
            chunk = records[start : start + 5000]
            store.upsert_batch(
                [r.article for r in chunk],
                [r.article.pmid for r in chunk if r.deleted],
                run_id=run,
                is_demo=demo,
            )
        store.update_run(run, status="completed", finished_at=1_764_000_000.0)
        store.save_labels(r.labels for r in records if r.labels is not None)
        fixed = [r for r in records if r.labels is not None][:corrections]
        for r in fixed:
            store.add_correction(r.article.pmid, "design", "rct", source="cli")
            r.labels["design"] = "rct"
            r.labels["verified"] = ["design"]
        store.set_meta("query", query)
        store.set_meta("model_version", MODEL_VERSION)
        if demo:
            store.set_meta("demo", "1")
    return path
