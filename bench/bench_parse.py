"""Parse throughput vs Bio.Entrez.read, and streaming memory flat in N.

Run: ``python -m bench.bench_parse``. Records are the real corpus rendered by our writer when
``../shared`` exists (PMIDs renumbered to fill the batch), else fictional records.
Goals: ``parse_efetch`` >= 3x ``Bio.Entrez.read`` on one core; ``iter_efetch`` peak memory
about the same for 1,000 and 20,000 records.

Memory is reported two ways: tracemalloc sees only Python allocations, while lxml builds
its tree with libxml2's malloc, so the peak RSS (VmHWM) of a fresh subprocess, measured after
its imports, is the honest number.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from itertools import cycle, islice
from pathlib import Path
from typing import Any

from Bio import Entrez

from crawler.standin.pubmed_xml import article_xml, efetch_document
from pipeline.parse import iter_efetch, parse_efetch

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("KEA_SHARED", ROOT.parent / "shared"))
SPEED_N = 2_000
MEMORY_NS = (1_000, 20_000)
ROUNDS = 5


def _fictional(i: int) -> dict[str, Any]:
    return {
        "pmid": str(99_000_000 + i),
        "doi": f"10.0000/fiction.{i}",
        "title": f"Imaginary trial number {i} of a made-up drug in invented patients",
        "abstract": "BACKGROUND: Invented.\nMETHODS: Nothing real.\nRESULTS: None.\n"
        "CONCLUSIONS: Fiction " * 3,
        "journal": "Journal of Imaginary Results",
        "year": 2000 + i % 25,
        "authors": [f"Author{j} AB" for j in range(6)],
        "publication_types": ["Journal Article"],
        "mesh_terms": ["Humans", "Ketamine* / therapeutic use", "Depression / drug therapy*"],
        "keywords": ["fiction", "benchmark"],
    }


def base_records() -> tuple[list[dict[str, Any]], str]:
    corpus = SHARED / "corpus" / "dev.jsonl"
    if corpus.exists():
        recs = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
        return recs, f"real corpus ({len(recs)} records, renumbered)"
    return [_fictional(i) for i in range(200)], "fictional records"


def render(records: list[dict[str, Any]], n: int) -> bytes:
    """n records cycled from ``records`` with unique PMIDs."""
    rows = (
        article_xml({**rec, "pmid": str(90_000_000 + i)})
        for i, rec in enumerate(islice(cycle(records), n))
    )
    return efetch_document(rows)


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _drain(path: str) -> int:
    count = 0
    with open(path, "rb") as fh:
        for _ in iter_efetch(fh):
            count += 1
    return count


def tracemalloc_peak(path: Path) -> tuple[int, int]:
    tracemalloc.start()
    count = _drain(str(path))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return count, peak


def _vm_hwm_kib() -> int:
    """Peak RSS of this process (Linux VmHWM, reset by exec unlike ru_maxrss), else ru_maxrss."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def rss_peak_kib(path: Path) -> tuple[int, int]:
    """(peak RSS growth, peak RSS) in KiB of a fresh interpreter that streams ``path``."""
    code = (
        "import sys\n"
        "from bench.bench_parse import _drain, _vm_hwm_kib\n"
        "before = _vm_hwm_kib()\n"
        "n = _drain(sys.argv[1])\n"
        "after = _vm_hwm_kib()\n"
        "print(n, after - before, after)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return int(out[1]), int(out[2])


def run() -> dict[str, Any]:
    """Measure, print a short table, return the numbers."""
    records, source = base_records()
    doc = render(records, SPEED_N)
    n_ours = len(parse_efetch(doc).articles)
    n_bio = len(Entrez.read(io.BytesIO(doc))["PubmedArticle"])
    assert n_ours == n_bio == SPEED_N, (n_ours, n_bio)
    # Interleaved rounds: the machine is shared, so compare each pair run back to back.
    ours, bio = [], []
    for _ in range(ROUNDS):
        ours.append(best_of(lambda: parse_efetch(doc), 1))
        bio.append(best_of(lambda: Entrez.read(io.BytesIO(doc)), 1))
    ratios = sorted(b / o for o, b in zip(ours, bio, strict=True))
    results: dict[str, Any] = {
        "source": source,
        "records": SPEED_N,
        "doc_mib": round(len(doc) / 2**20, 2),
        "kea_records_per_s": round(SPEED_N / min(ours)),
        "biopython_records_per_s": round(SPEED_N / min(bio)),
        "speedup_best": round(min(bio) / min(ours), 2),
        "speedup_median": round(ratios[len(ratios) // 2], 2),
        "memory": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for n in MEMORY_NS:
            path = Path(tmp) / f"efetch_{n}.xml"
            path.write_bytes(render(records, n))
            count, py_peak = tracemalloc_peak(path)
            rss_delta, rss_total = rss_peak_kib(path)
            results["memory"][n] = {
                "file_mib": round(path.stat().st_size / 2**20, 1),
                "records": count,
                "tracemalloc_peak_kib": py_peak // 1024,
                "rss_growth_kib": rss_delta,  # peak RSS while streaming minus after imports
                "rss_peak_kib": rss_total,
            }
    results["real_answers"] = real_answer_speed()
    _print(results)
    return results


def real_answer_speed(n: int = SPEED_N) -> dict[str, Any] | None:
    """The same race on real efetch records (../shared/eutils-samples), which carry what
    NCBI really sends (reference lists, grants, MathML) and the corpus rendering lacks."""
    from lxml import etree

    from crawler.standin.pubmed_xml import efetch_document

    samples = SHARED / "eutils-samples"
    if not samples.exists():
        return None
    elems: list[str] = []
    for f in sorted(samples.rglob("*.xml")):
        try:
            root = etree.parse(str(f), etree.XMLParser(load_dtd=False, no_network=True)).getroot()
        except etree.XMLSyntaxError:
            continue
        if root.tag == "PubmedArticleSet":
            elems += [etree.tostring(e, encoding="unicode") for e in root.iter("PubmedArticle")]
    if not elems:
        return None
    doc = efetch_document((elems * (n // len(elems) + 1))[:n])
    ours = best_of(lambda: parse_efetch(doc), 3)
    bio = best_of(lambda: Entrez.read(io.BytesIO(doc), validate=False), 3)
    return {
        "records": n,
        "distinct": len(elems),
        "doc_mib": round(len(doc) / 2**20, 2),
        "kea_records_per_s": round(n / ours),
        "biopython_records_per_s": round(n / bio),
        "speedup": round(bio / ours, 2),
    }


def _print(r: dict[str, Any]) -> None:
    print(f"bench_parse — {r['records']} records ({r['doc_mib']} MiB), {r['source']}")
    print(f"  kea parse_efetch   {r['kea_records_per_s']:>8} records/s")
    print(f"  Bio.Entrez.read    {r['biopython_records_per_s']:>8} records/s")
    print(
        f"  speedup            {r['speedup_best']:>8}x best-of, {r['speedup_median']}x median"
        " of paired rounds (goal >= 3x)"
    )
    real = r.get("real_answers")
    if real:
        print(
            f"  real efetch records ({real['distinct']} distinct, {real['doc_mib']} MiB): "
            f"kea {real['kea_records_per_s']}/s vs Bio.Entrez {real['biopython_records_per_s']}/s"
            f" -> {real['speedup']}x"
        )
    print(
        "  iter_efetch memory:    N   file MiB  tracemalloc peak KiB  RSS growth KiB  RSS peak KiB"
    )
    for n, m in r["memory"].items():
        print(
            f"  {n:>24} {m['file_mib']:>9} {m['tracemalloc_peak_kib']:>21} "
            f"{m['rss_growth_kib']:>15} {m['rss_peak_kib']:>13}"
        )


if __name__ == "__main__":
    run()
