"""Records served by the E-utilities stand-in, and a generator of synthetic ones.

A record keeps the three PubMed dates the stand-in filters on (entrez/edat, modified/mdat,
publication/pdat) next to ``fields``, the dict ``pubmed_xml.article_xml`` renders. All text made
here is ours and says it is synthetic; nothing is copied from PubMed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta

from crawler.standin.pubmed_xml import article_xml

SYNTH_JOURNALS = (
    ("Journal of Synthetic Psychiatry", "J Synth Psychiatry"),
    ("Stand-in Reports in Neuropharmacology", "Stand-in Rep Neuropharmacol"),
    ("Fictional Anaesthesia Quarterly", "Fict Anaesth Q"),
)
SYNTH_TOPICS = (
    ("ketamine", "treatment-resistant depression", "Depressive Disorder, Treatment-Resistant"),
    ("esketamine", "major depressive disorder", "Depressive Disorder, Major"),
    ("arketamine", "depression-like behaviour in mice", "Depression"),
    ("ketamine", "post-traumatic stress disorder", "Stress Disorders, Post-Traumatic"),
    ("ketamine", "generalized anxiety", "Anxiety Disorders"),
    ("ketamine", "postoperative pain", "Pain, Postoperative"),
    ("ketamine", "procedural sedation", "Anesthesia"),
)
SYNTH_DESIGNS = (
    ("randomized controlled trial", "Randomized Controlled Trial"),
    ("open-label study", "Clinical Trial"),
    ("retrospective cohort", "Observational Study"),
    ("systematic review", "Systematic Review"),
    ("case report", "Case Reports"),
)
SYNTH_SURNAMES = (
    "Synthia",
    "Mockley",
    "Fakerson",
    "Standin",
    "Doubleday",
    "Testwell",
    "Placeholder",
    "Samplova",
)


@dataclass
class StandinRecord:
    """One PubMed record as the stand-in serves it; ``fields`` carry the dates as well."""

    pmid: str
    entrez_date: date
    modified_date: date
    pub_date: date
    fields: dict
    _xml: str | None = field(default=None, init=False, repr=False, compare=False)

    def xml(self) -> str:
        """The <PubmedArticle> element, rendered once (efetch pages reuse it)."""
        if self._xml is None:
            self._xml = article_xml(self.fields)
        return self._xml


def revise_record(rec: StandinRecord, modified: date, *, note: str = "revised") -> StandinRecord:
    """A copy with a newer modified date and visibly changed title/abstract (incremental tests)."""
    fields = dict(rec.fields)
    fields["title"] = f"{fields.get('title') or ''} ({note} {modified.isoformat()})".strip()
    if fields.get("abstract"):
        fields["abstract"] = f"{fields['abstract']}\nNOTE: Record {note} on {modified.isoformat()}."
    fields["revised_date"] = modified.isoformat()
    return replace(rec, modified_date=modified, fields=fields)


def synthetic_records(
    n: int,
    *,
    seed: int = 0,
    start_pmid: int = 90_000_001,
    start_date: date = date(1990, 1, 1),
    end_date: date = date(2026, 10, 31),
) -> list[StandinRecord]:
    """n deterministic fictional records, entrez dates spread over [start_date, end_date].

    PMIDs rise with entrez date as in PubMed, so date windows split large result sets the way
    the crawler has to split real ones past the 9,999 cap.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if end_date < start_date:
        raise ValueError(f"end_date {end_date} is before start_date {start_date}")
    rng = random.Random(seed)
    span = (end_date - start_date).days
    offsets = sorted(_between(rng, 0, span) for _ in range(n))
    return [
        _synthetic_one(i, start_pmid + i, start_date + timedelta(days=off), end_date, rng)
        for i, off in enumerate(offsets)
    ]


def _between(rng: random.Random, lo: int, hi: int) -> int:
    """Uniform int in [lo, hi]; rng.random() is ~5x faster than randint for 100k records."""
    return lo + int(rng.random() * (hi - lo + 1))


def _synthetic_one(
    i: int, pmid: int, entrez: date, end_date: date, rng: random.Random
) -> StandinRecord:
    r = rng.random
    drug, condition, mesh = SYNTH_TOPICS[int(r() * len(SYNTH_TOPICS))]
    design, pubtype = SYNTH_DESIGNS[int(r() * len(SYNTH_DESIGNS))]
    journal, iso = SYNTH_JOURNALS[int(r() * len(SYNTH_JOURNALS))]
    pub = entrez + timedelta(days=_between(rng, -45, 30))
    modified = min(max(end_date, entrez), entrez + timedelta(days=_between(rng, 0, 400)))
    first_page = _between(rng, 1, 900)
    abstract = "\n".join(
        (
            f"BACKGROUND: Synthetic record {i} made by the Kea stand-in; fictional test data, "
            f"not a real study.",
            f"METHODS: A fictional {design} of {drug} for {condition} with "
            f"{_between(rng, 12, 400)} participants.",
            f"RESULTS: Invented numbers only (score change {r() * 14 - 12:.1f} points).",
            "CONCLUSIONS: None; this text exists to exercise the crawler.",
        )
    )
    fields = {
        "pmid": str(pmid),
        "doi": f"10.5555/kea.synth.{pmid}",
        "pmcid": None,
        "title": f"Synthetic record {i}: {drug} {design} in {condition}",
        "abstract": abstract,
        "journal": journal,
        "journal_iso": iso,
        "year": pub.year,
        "month": pub.month,
        "day": pub.day,
        "volume": str(max(1, pub.year - 1979)),
        "issue": str(_between(rng, 1, 12)),
        "pages": f"{first_page}-{first_page + _between(rng, 3, 12)}",
        "authors": [
            f"{SYNTH_SURNAMES[int(r() * len(SYNTH_SURNAMES))]} {chr(65 + int(r() * 26))}"
            for _ in range(_between(rng, 1, 5))
        ],
        "publication_types": ["Journal Article", pubtype],
        "mesh_terms": ["Humans", mesh, "Ketamine"] if i % 10 else [],
        "keywords": [drug, condition],
        "entrez_date": entrez.isoformat(),
        "revised_date": modified.isoformat(),
        "language": "eng",
        "retracted": False,
    }
    return StandinRecord(str(pmid), entrez, modified, pub, fields)
