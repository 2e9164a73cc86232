"""The query language (pipeline.search): parse, translate, bound parameters, errors, fuzz,
and what it finds in a small store of fictional records (expected sets worked out in Python)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import query as q
from pipeline import search as s
from pipeline.query import StudyFilter
from pipeline.records import AbstractSection, Article, Author
from pipeline.store import Store

RCT = "Randomized Controlled Trial"


def _art(pmid, title, abstract, authors=(), pt=("Journal Article",), year=2020, doi=None, **kw):
    return Article(
        pmid=str(pmid),
        title=title,
        abstract_sections=[AbstractSection(abstract)] if abstract else [],
        authors=[Author(last_name=a.split()[0], initials=a.split()[1]) for a in authors],
        publication_types=list(pt),
        pub_year=year,
        doi=doi,
        journal=kw.pop("journal", "Journal of Invented Psychiatry"),
        entrez_date=kw.pop("entrez", f"{year}-03-01"),
        **kw,
    )


ARTICLES = [
    _art(
        101,
        "Esketamine for PTSD in veterans",
        "A randomised trial of esketamine against placebo. Registered as NCT01234567.",
        ["Quillfeather AB", "Otterbury C"],
        pt=("Journal Article", RCT),
        year=2019,
        doi="10.5555/fict.101",
    ),
    _art(
        102,
        "Ketamine infusion and anxiety",
        "Open label ketamine infusion for anxiety; ISRCTN 12345678.",
        ["Brindlecombe D"],
        year=2021,
    ),
    _art(
        103,
        "Intranasal esketamine in depression",
        "Esketamine reduced depressive symptoms versus placebo.",
        ["Quillfeather AB"],
        pt=("Journal Article", RCT),
        year=2023,
    ),
    _art(
        104,
        "Posttraumatic stress and ketamine: a review",
        "We reviewed ptsd trials of ketamine.",
        ["Fenwhistle E"],
        pt=("Journal Article", "Review"),
        year=2017,
    ),
    _art(
        105,
        "Arketamine in mice",
        "Arketamine in a mouse model of ptsd-like behaviour.",
        ["Marrowdale F"],
        year=2024,
        journal="Fictional Neuropharmacology Letters",
    ),
    _art(
        106,
        "PTSD and ketamine trial protocol",
        None,
        ["Otterbury C"],
        pt=("Journal Article", RCT),
        year=2022,
        accession_numbers=["NCT07654321"],
    ),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("search") / "kea.sqlite"
    with Store(path) as store:
        store.upsert_batch(ARTICLES)
    return path


@pytest.fixture(scope="module")
def conn(db: Path) -> Iterator[sqlite3.Connection]:
    c = q.connect(db)
    yield c
    c.close()


def found(conn: sqlite3.Connection, text: str) -> set[int]:
    f = StudyFilter(search=text, scope="all")
    rows = q.list_studies(conn, f, limit=None)
    assert len(rows) == q.count_studies(conn, f)
    return {int(r["pmid"]) for r in rows}


# -- parse ---------------------------------------------------------------------------------
def test_parse_tree_shapes() -> None:
    t = s.parse('ptsd[ti] AND "randomized controlled trial"[pt]')
    assert t == s.Bool(
        "AND",
        (
            s.Term("ptsd", "ti", pos=0),
            s.Term("randomized controlled trial", "pt", phrase=True, pos=12),
        ),
    )
    # left to right, equal precedence, as PubMed: (a OR b) AND c
    t = s.parse("a OR b c")
    assert (
        isinstance(t, s.Bool)
        and t.op == "AND"
        and t.children[0] == s.Bool("OR", (s.Term("a", pos=0), s.Term("b", pos=4)))
    )
    assert s.parse("esketamine -placebo") == s.Bool(
        "AND", (s.Term("esketamine", pos=0), s.Not(s.Term("placebo", pos=11)))
    )
    assert s.parse("ketam*") == s.Term("ketam", prefix=True, pos=0)
    assert s.parse("s-ketamine") == s.Term("s-ketamine", pos=0)  # a hyphen inside is no NOT
    # a pasted title: punctuation-only terms have no token and are left out; "-" is NOT
    # only at the start of a term
    assert s.parse("(R)-(-)-Ketamine & mice") == s.Bool(
        "AND", (s.Term("R", pos=1), s.Term("-Ketamine", pos=7), s.Term("mice", pos=19))
    )
    assert s.parse("2018:2024[dp]") == s.Term("2018:2024", "dp", pos=0)
    assert s.parse("2020[dp]") == s.Term("2020:2020", "dp", pos=0)
    # a tag applies to the words before it up to an operator (PubMed): the author "murrough jw"
    assert s.parse("murrough jw[au]") == s.Term("murrough jw", "au", phrase=True, pos=0)
    assert s.parse("  ") is None and s.parse("") is None
    # positions are of the text as typed (pyparsing would expand tabs; found by the fuzzer)
    assert s.parse("x\t\t-a") == s.Bool("AND", (s.Term("x", pos=0), s.Not(s.Term("a", pos=3))))


@pytest.mark.parametrize(
    ("text", "problem", "position"),
    [
        ("ptsd AND", "AND has no term after it", 6),
        ("AND ptsd", "AND has no term before it", 1),
        ("(ptsd OR anxiety", "unclosed parenthesis", 1),
        ("ptsd)", "')' without its '('", 5),
        ('"ptsd', 'unclosed quote (")', 1),
        ("ptsd[xx]", "unknown field tag [xx]", 1),
        ("ptsd [ti", "unclosed field tag", 6),
        ("()", "empty parentheses", 2),
        ("a*b", "'*' may only end a term", 1),
        ("***", "nothing to search", 1),
        ('""', "nothing to search", 1),
        ("- & (-)", "nothing to search", 1),
        ("x 20x:2[dp]", "is not a year or a year range", 3),
        ("2024:2018[dp]", "ends before it starts", 1),
        ("abc[pmid]", "is not a PMID", 1),
        ("[ti]", "a field tag must follow a term", 1),
        ("(a OR b)[ti]", "a field tag after parentheses", 1),
        ("a OR OR b", "OR has no term after it", 3),
        ("0\x00", "control character", 2),
    ],
)
def test_invalid_syntax_is_one_clear_error(text: str, problem: str, position: int) -> None:
    with pytest.raises(s.SearchSyntaxError) as e:
        s.parse(text)
    msg = str(e.value)
    assert problem in msg
    assert msg.endswith(f"at character {position}")
    assert "\n" not in msg
    assert s.check(text) == msg
    assert s.check("ptsd") is None


def test_invalid_search_never_runs_as_another_search(conn: sqlite3.Connection) -> None:
    with pytest.raises(q.SearchSyntaxError):
        q.count_studies(conn, StudyFilter(search="ptsd OR", scope="all"))


# -- translate -----------------------------------------------------------------------------
def test_translation_to_fts5_and_bound_sql() -> None:
    p = s.plan('ptsd[ti] AND "randomized controlled trial"[pt]')
    assert p is not None and p.ranked and p.where is None
    assert p.join_params == ['(title: ("ptsd") AND pubtypes_text: ("randomized controlled trial"))']
    p = s.plan("esketamine -placebo")
    assert p.join_params == [
        '(({title abstract authors_text}: ("esketamine")) NOT {title abstract authors_text}: ("placebo"))'
    ]
    p = s.plan("ketam* 2018:2024[dp]")  # mixed: FTS subquery AND a bound year range
    assert "a.year BETWEEN ? AND ?" in p.where and p.where_params[-2:] == [2018, 2024]
    p = s.plan("12345678")  # a bare PMID: that record, or the number in the text
    assert "a.pmid = ?" in p.where and 12345678 in p.where_params
    p = s.plan("it's;DROP")  # punctuation stays inside a quoted FTS5 phrase
    assert p.join_params == ['{title abstract authors_text}: ("it\'s;DROP")']


def _sql_and_params(p: s.SearchPlan) -> tuple[str, list]:
    return p.join + " WHERE " + (p.where or "1"), [*p.join_params, *p.where_params]


def test_user_text_never_reaches_sql_text() -> None:
    for text in [
        "zqxj OR zqxk[ti]",
        "x'; DROP TABLE articles;",
        '"zqxj zqxk"[au] NOT zqxl*',
        "10.5555/zqxj 99999[pmid] 2001:2002[dp] NCT01234567",
    ]:
        sql, params = _sql_and_params(s.plan(text))
        for word in re.findall(r"zq\w+|DROP|99999|2001|NCT\d+|10\.5555", text):
            assert word not in sql
        assert sql.count("?") == len(params)


# -- what it finds -------------------------------------------------------------------------
def _pred(f) -> set[int]:
    return {int(a.pmid) for a in ARTICLES if f(a)}


def _text(a: Article) -> str:
    return f"{a.title} {a.abstract or ''} {' '.join(a.author_names)}".lower()


def test_search_results(conn: sqlite3.Connection) -> None:
    rct = _pred(lambda a: RCT in a.publication_types)
    ptsd_title = _pred(lambda a: "ptsd" in a.title.lower())
    assert found(conn, 'ptsd[ti] AND "randomized controlled trial"[pt]') == ptsd_title & rct
    assert found(conn, "PTSD OR anxiety") == _pred(
        lambda a: re.search(r"\bptsd\b|\banxiety\b", _text(a))
    )
    assert found(conn, "esketamine -placebo") == _pred(
        lambda a: "esketamine" in _text(a) and "placebo" not in _text(a)
    )
    assert found(conn, "esketamine NOT placebo") == found(conn, "esketamine -placebo")
    assert found(conn, "(esketamine OR arketamine) AND placebo") == {101, 103}
    assert found(conn, "ketam*") == _pred(lambda a: re.search(r"\bketam", _text(a)))
    assert found(conn, "quillfeather") == {101, 103}  # an author's studies
    assert found(conn, "quillfeather a[au]") == {101, 103}  # "Quillfeather AB"
    assert found(conn, "otterbury[au] NOT trial[ti]") == {101}
    assert found(conn, "2019:2021[dp]") == _pred(lambda a: 2019 <= a.pub_year <= 2021)
    assert found(conn, "ketamine 2022[dp]") == {106}
    assert found(conn, "104") == {104}  # a bare PMID finds that record
    assert found(conn, "104[pmid] OR 105[pmid]") == {104, 105}
    assert found(conn, "10.5555/FICT.101") == {101}  # a bare DOI, any case
    assert found(conn, "neuropharmacology[ta]") == {105}
    assert found(conn, '"posttraumatic stress"[ti]') == {104}
    assert found(conn, "NOT ketamine") == _pred(lambda a: not re.search(r"\bketamine\b", _text(a)))
    assert found(conn, "NCT07654321") == {106}  # from the DataBankList
    assert found(conn, "ISRCTN12345678[si]") == {102}  # normalised from "ISRCTN 12345678"


def test_relevance_order_and_snippets(conn: sqlite3.Connection) -> None:
    f = StudyFilter(search="esketamine", scope="all")
    rows = q.list_studies(conn, f, sort="relevance")
    assert [r["pmid"] for r in rows][:2] != [] and {r["pmid"] for r in rows} == {"101", "103"}
    ranks = [
        conn.execute(
            "SELECT bm25(articles_fts) FROM articles_fts WHERE articles_fts MATCH ? AND rowid = ?",
            (s.plan("esketamine").highlight, int(r["pmid"])),
        ).fetchone()[0]
        for r in rows
    ]
    assert ranks == sorted(ranks)
    snips = q.snippets(conn, "esketamine OR ptsd[ti]", ["101", "103", "104", "106"])
    assert set(snips) == {"101", "103", "106"}  # 104 has "PTSD" nowhere in its title
    pieces = s.split_marks(snips["101"]["title"])
    assert ("Esketamine", True) in pieces and ("PTSD", True) in pieces
    assert ("in veterans", False) in [(p.strip(), m) for p, m in pieces]
    assert s.MARK_START + "Esketamine" + s.MARK_END in snips["103"]["snippet"]
    assert snips["106"]["snippet"] is None  # no abstract
    assert q.snippets(conn, "104[pmid]", ["104"]) == {}  # nothing textual to highlight


# -- fuzz ----------------------------------------------------------------------------------
_ATOMS = st.sampled_from(
    [
        "ptsd", "ketam*", "AND", "OR", "NOT", "(", ")", '"', "[ti]", "[au]", "[pt]", "[dp]",
        "[xx]", "[pmid]", "2019:2021", "104", "-", "*", "10.5555/fict.101", ":", "^", "NEAR",
        "{", "}", "'", ";", "é", "NCT01234567", " ", "  ",
    ]
)  # fmt: skip


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(st.lists(_ATOMS, max_size=12).map("".join), st.text(max_size=40)))
def test_fuzz_no_crash_and_everything_bound(conn: sqlite3.Connection, text: str) -> None:
    try:
        p = s.plan(text)
    except s.SearchSyntaxError as err:
        assert str(err) and "\n" not in str(err)
        return
    if p is None:
        assert not text.strip()
        return
    sql, params = _sql_and_params(p)
    assert sql.count("?") == len(params)
    assert all(isinstance(x, str | int) for x in params)
    # runs against the real FTS5 table: a translation FTS5 cannot read would raise here
    conn.execute(f"SELECT COUNT(*) {sql}", params).fetchone()
    q.count_studies(conn, StudyFilter(search=text, scope="all"))
