"""Index and search benchmark: fraudkb's index vs stock Whoosh + jieba vs SQLite FTS5.

    .venv/bin/python benchmarks/bench_index.py --docs 2000          # quick run
    .venv/bin/python benchmarks/bench_index.py --build-only DATA    # corpus + index for timing
                                                                    # `fraudkb --data DATA search`

The corpus is generated deterministically (`--seed`): words sampled from jieba's dictionary by
frequency, mixed with the anti-fraud terms, ~1,500 characters per document. Every engine in
one run sees the same documents and the same 200 AND queries of 1-3 words. Prints a table and
writes JSON (`--out`). Not part of the test run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import CATEGORIES, SOURCES, WordSampler  # noqa: E402
from crawler.records import Article, Tags  # noqa: E402
from crawler.store import CorpusStore  # noqa: E402
from index.analysis import iter_words, load_user_terms  # noqa: E402
from index.build import rebuild_index  # noqa: E402
from index.schema import current_generation  # noqa: E402
from index.search import SearchSession  # noqa: E402

DOC_CHARS = 1500
QUERY_COUNT = 200


@dataclass(frozen=True, slots=True)
class Doc:
    url: str
    title: str
    published: str | None
    source: str
    categories: tuple[str, ...]
    text: str


@dataclass(frozen=True, slots=True)
class Latency:
    p50_ms: float
    p99_ms: float


def percentiles(samples: Sequence[float]) -> Latency:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return Latency(round(statistics.median(ordered) * 1000, 2), round(p99 * 1000, 2))


# -- corpus --------------------------------------------------------------------------------
def generate_corpus(count: int, seed: int) -> list[Doc]:
    """`count` deterministic documents of ~DOC_CHARS characters."""
    rng = random.Random(seed)
    sampler = WordSampler(rng, load_user_terms())
    docs = []
    for i in range(count):
        parts: list[str] = []
        length = 0
        while length < DOC_CHARS:
            sentence = sampler.sentence()
            parts.append(sentence)
            length += len(sentence)
        published = None if rng.random() < 0.05 else (
            dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(2500))).isoformat()
        docs.append(Doc(f"https://bench.example.cn/{i}.html",
                        "".join(sampler.words_for(rng.randint(3, 6))), published,
                        rng.choice(SOURCES), tuple(rng.sample(CATEGORIES, rng.randint(0, 2))),
                        "".join(parts)))
    return docs


def fill_store(store: CorpusStore, docs: Sequence[Doc]) -> None:
    with store.transaction():
        for doc in docs:
            tags = Tags(categories=doc.categories,
                        primary=doc.categories[0] if doc.categories else None)
            store.save_article(source=doc.source, kind="police", tags=tags,
                               article=Article(doc.url, doc.title, doc.published, doc.text))


def generate_queries(docs: Sequence[Doc], seed: int, terms: tuple[str, ...]) -> list[list[str]]:
    """AND queries of 1-3 words drawn from the documents' own words (so most have hits)."""
    rng = random.Random(seed + 1)
    queries = []
    for _ in range(QUERY_COUNT):
        doc = rng.choice(docs)
        start = rng.randrange(0, len(doc.text) - 200)
        words = [w for w, *_ in iter_words(doc.text[start:start + 200], terms, subwords=False)
                 if len(w) >= 2]
        queries.append(rng.sample(words, min(len(words), rng.randint(1, 3))))
    return queries


# -- engines -------------------------------------------------------------------------------
def bench_ours(data_dir: Path, queries: list[list[str]], procs: Sequence[int]) -> dict:
    """Build with each `procs` value, then query with one long-lived session."""
    result: dict = {"build": {}}
    with CorpusStore(data_dir) as store:
        for n in procs:
            update = rebuild_index(store, data_dir / "index", procs=n)
            result["build"][f"procs={n}"] = {"seconds": round(update.seconds, 2),
                                             "docs_per_s": round(update.added / update.seconds,
                                                                 1)}
    with SearchSession(data_dir / "index") as session:
        result["query"] = asdict(_time_queries(
            lambda q: session.search(q, snippets=False), queries))
        result["query_snippets"] = asdict(_time_queries(lambda q: session.search(q), queries))
        result["hits"] = [session.search(q, snippets=False).total for q in queries]
    live = current_generation(data_dir / "index")
    result["index_mib"] = round(_dir_size(live) / 2**20, 1) if live else None
    return result


def bench_stock_whoosh(docs: Sequence[Doc], queries: list[list[str]], work: Path) -> dict:
    """A plain one-writer Whoosh loop with jieba's stock ChineseAnalyzer."""
    from jieba.analyse import ChineseAnalyzer
    from whoosh import index as whoosh_index
    from whoosh import query as wq
    from whoosh.fields import ID, TEXT, Schema

    analyzer = ChineseAnalyzer()
    schema = Schema(id=ID(unique=True, stored=True), title=TEXT(analyzer=analyzer, stored=True),
                    text=TEXT(analyzer=analyzer, stored=True))
    path = work / "stock"
    path.mkdir()
    ix = whoosh_index.create_in(str(path), schema)
    started = time.perf_counter()
    with ix.writer(limitmb=256) as writer:
        for doc in docs:
            writer.add_document(id=doc.url, title=doc.title, text=doc.text)
    seconds = time.perf_counter() - started

    def run(words: list[str], highlight: bool) -> int:
        q = wq.And([wq.Or([wq.Term("title", w), wq.Term("text", w)]) for w in words])
        results = searcher.search(q, limit=10)
        if highlight:
            for hit in results:
                hit.highlights("text")
        return len(results)

    with ix.searcher() as searcher:
        query = _time_queries(lambda q: run(q, False), queries)
        highlighted = _time_queries(lambda q: run(q, True), queries)
        hits = [run(q, False) for q in queries]
    ix.close()
    return {"build": {"seconds": round(seconds, 2), "docs_per_s": round(len(docs) / seconds, 1)},
            "query": asdict(query), "query_snippets": asdict(highlighted), "hits": hits,
            "index_mib": round(_dir_size(path) / 2**20, 1)}


def bench_fts5(docs: Sequence[Doc], queries: list[list[str]], terms: tuple[str, ...]) -> dict:
    """SQLite FTS5 over the same jieba words (text pre-segmented; engine time only)."""
    started = time.perf_counter()
    rows = [(" ".join(w for w, *_ in iter_words(d.title, terms, subwords=False)),
             " ".join(w for w, *_ in iter_words(d.text, terms, subwords=False))) for d in docs]
    segment_seconds = time.perf_counter() - started
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE fts USING fts5(title, text)")
    started = time.perf_counter()
    with db:
        db.executemany("INSERT INTO fts (title, text) VALUES (?, ?)", rows)
    seconds = time.perf_counter() - started

    def run(words: list[str], snippet: bool) -> int:
        match = " AND ".join('"' + w.replace('"', "") + '"' for w in words)
        extra = ", snippet(fts, 1, '[', ']', '…', 24)" if snippet else ""
        return len(db.execute(f"SELECT rowid{extra} FROM fts WHERE fts MATCH ? "
                              "ORDER BY rank LIMIT 10", (match,)).fetchall())

    query = _time_queries(lambda q: run(q, False), queries)
    snippets = _time_queries(lambda q: run(q, True), queries)
    hits = [db.execute("SELECT count(*) FROM fts WHERE fts MATCH ?", (
        " AND ".join(f'"{w}"' for w in q),)).fetchone()[0] for q in queries]
    return {"segment_seconds": round(segment_seconds, 2),
            "build": {"seconds": round(seconds, 2), "docs_per_s": round(len(docs) / seconds, 1)},
            "query": asdict(query), "query_snippets": asdict(snippets), "hits": hits}


def _time_queries(run: Callable[[list[str]], object], queries: list[list[str]]) -> Latency:
    run(queries[0])    # warm-up: caches, lazy loads
    samples = []
    for words in queries:
        started = time.perf_counter()
        run(words)
        samples.append(time.perf_counter() - started)
    return percentiles(samples)


def bench_cold_search(data_dir: Path, known: str, unknown: str) -> dict:
    """Wall time of a fresh interpreter doing one library search (the CLI adds its imports)."""
    code = ("import sys; from index.search import search; "
            "search(sys.argv[1], sys.argv[2:])")
    timings = {}
    for label, words in (("known_word", [known]), ("needs_jieba", [unknown])):
        samples = []
        for _ in range(5):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code, str(data_dir / "index"), *words],
                           check=True, cwd=ROOT)
            samples.append(time.perf_counter() - started)
        timings[label] = {"median_s": round(statistics.median(samples), 3), "query": words}
    return timings


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- main ----------------------------------------------------------------------------------
def build_only(data_dir: Path, count: int, seed: int) -> None:
    """Generate the corpus into `data_dir` and index it, for timing the CLI."""
    with CorpusStore(data_dir) as store:
        fill_store(store, generate_corpus(count, seed))
        print(rebuild_index(store, data_dir / "index"))


def run(count: int, seed: int, procs: Sequence[int], out: Path, stock: bool = True) -> dict:
    terms = load_user_terms()
    started = time.perf_counter()
    docs = generate_corpus(count, seed)
    queries = generate_queries(docs, seed, terms)
    work = Path(tempfile.mkdtemp(prefix="fraudkb-bench-"))
    try:
        with CorpusStore(work / "data") as store:
            fill_store(store, docs)
        report = {
            "docs": count, "seed": seed, "queries": len(queries),
            "avg_doc_chars": round(sum(len(d.text) for d in docs) / len(docs)),
            "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
            "ours": bench_ours(work / "data", queries, procs),
            "stock_whoosh_jieba": bench_stock_whoosh(docs, queries, work) if stock else None,
            "sqlite_fts5": bench_fts5(docs, queries, terms),
            "cold_search": bench_cold_search(work / "data", "诈骗", "诈骗分子兼职刷单返利"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    return report


def print_table(report: dict) -> None:
    print(f"{report['docs']} docs × {report['avg_doc_chars']} chars, "
          f"{report['queries']} AND queries (ms p50/p99)")
    print(f"{'engine':<26}{'docs/s':>10}{'query':>16}{'+top-10 snippets':>20}{'MiB':>8}")
    ours = report["ours"]
    for label, build in ours["build"].items():
        print(f"{'fraudkb ' + label:<26}{build['docs_per_s']:>10}")
    for name in ("ours", "stock_whoosh_jieba", "sqlite_fts5"):
        row = report[name]
        if row is None:
            continue
        rate = "" if name == "ours" else row["build"]["docs_per_s"]
        q, s = row["query"], row["query_snippets"]
        print(f"{name:<26}{rate!s:>10}{q['p50_ms']:>8}/{q['p99_ms']:<7}"
              f"{s['p50_ms']:>12}/{s['p99_ms']:<7}{row.get('index_mib', ''):>8}")
    agree = sum(a == b for a, b in zip(ours["hits"], report["sqlite_fts5"]["hits"], strict=True))
    print(f"hit counts equal to FTS5 on {agree}/{report['queries']} queries")
    for label, cold in report["cold_search"].items():
        print(f"cold library search ({label}, {cold['query']}): {cold['median_s']} s")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20000, help="documents (default 20000)")
    parser.add_argument("--seed", type=int, default=20261126, help="corpus seed")
    parser.add_argument("--procs", default="1,2", help="writer processes to try, e.g. 1,2")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "benchmarks" / "results" / "bench_index.json",
                        help="JSON report path")
    parser.add_argument("--no-stock", action="store_true",
                        help="skip the stock Whoosh baseline (hours at 100k documents)")
    parser.add_argument("--build-only", type=Path, metavar="DATA_DIR",
                        help="only generate the corpus into DATA_DIR and index it")
    args = parser.parse_args(argv)
    if args.build_only:
        build_only(args.build_only, args.docs, args.seed)
        return
    procs = [int(p) for p in args.procs.split(",")]
    print_table(run(args.docs, args.seed, procs, args.out, stock=not args.no_stock))


if __name__ == "__main__":
    main()
