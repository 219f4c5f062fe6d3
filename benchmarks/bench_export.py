"""Export benchmark: `export_corpus` with near-duplicate groups vs writing the rows with
json.dumps only, on one generated corpus, in one run.

    .venv/bin/python benchmarks/bench_export.py --docs 10000
    .venv/bin/python benchmarks/bench_export.py --docs 100000 \
        --out benchmarks/results/bench_export.json

The corpus is deterministic (`--seed`): words sampled from jieba's dictionary by frequency,
with the anti-fraud terms mixed in, ~1,500 characters in paragraphs; `--repost-share` of the
documents (default 10 %) are planted reposts of an earlier one: a new header and footer, one
sentence replaced, some punctuation changed, published later. It is generated in a child
process and inserted in one transaction, so this process's peak RSS (getrusage) is the
export's alone. The baseline (read every article, json.dumps the same fields) runs first.

Also reported: how many planted reposts the export dropped as duplicates (recall) and how
many non-reposts it dropped (false merges). Targets (issue 5): <= 60 s, <= 2 GB for 100k.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.corpus import CATEGORIES, SOURCES, WordSampler  # noqa: E402
from crawler.records import Article, Evidence, Tags  # noqa: E402
from crawler.store import CorpusStore  # noqa: E402
from index.analysis import load_user_terms  # noqa: E402
from index.export import ExportOptions, ExportProgress, export_corpus  # noqa: E402

DOC_CHARS = 1500
PARAGRAPH_CHARS = 250
HEADERS = ("【转发扩散】市反诈中心发布紧急预警，请相互转告！", "转自：平安{n}微信公众号",
           "【重要提醒】以下案例请广大师生务必阅读。")
FOOTERS = ("（来源：{n}区公安分局，责任编辑：张明）",
           "本文转载自网络，如有侵权请联系删除。编辑：{n}",
           "欢迎关注{n}反诈中心公众号，获取更多防骗知识。")


def _original(sampler: WordSampler, rng: random.Random) -> list[str]:
    """A notice as a list of sentences; "\n" sentences end paragraphs."""
    sentences: list[str] = []
    length = paragraph = 0
    while length < DOC_CHARS:
        sentence = sampler.sentence()
        sentences.append(sentence)
        length += len(sentence)
        paragraph += len(sentence)
        if paragraph > PARAGRAPH_CHARS and rng.random() < 0.5:
            sentences.append("\n")
            paragraph = 0
    return sentences


def _repost(sentences: list[str], sampler: WordSampler, rng: random.Random) -> str:
    """New header and footer, one sentence replaced, a little punctuation changed."""
    changed = list(sentences)
    changed[rng.randrange(len(changed))] = sampler.sentence()
    body = "".join(changed).replace("，", ",", rng.randint(0, 5))
    number = rng.randint(1, 99)
    return "\n".join([rng.choice(HEADERS).format(n=number), body,
                      rng.choice(FOOTERS).format(n=number)])


def _date(rng: random.Random, after: str | None = None) -> str | None:
    if after:
        return (dt.date.fromisoformat(after) + dt.timedelta(days=rng.randint(1, 60))).isoformat()
    return None if rng.random() < 0.05 else (
        dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(2500))).isoformat()


def generate(data: Path, count: int, seed: int, repost_share: float) -> dict[str, str]:
    """Fill a corpus at `data` in one transaction; returns {repost url: original url}."""
    rng = random.Random(seed)
    sampler = WordSampler(rng, sorted(load_user_terms()))
    originals: list[tuple[str, list[str], str | None]] = []
    planted: dict[str, str] = {}
    with CorpusStore(data) as store, store.transaction():
        for i in range(count):
            url = f"https://bench.example.cn/{i}.html"
            if originals and rng.random() < repost_share:
                source_url, sentences, published = rng.choice(originals)
                text = _repost(sentences, sampler, rng)
                published = _date(rng, after=published) if published else None
                planted[url] = source_url
            else:
                sentences, published = _original(sampler, rng), _date(rng)
                originals.append((url, sentences, published))
                text = "".join(sentences)
            _save(store, rng, Article(url, sampler.sentence()[:-1], published, text))
    return planted


def _save(store: CorpusStore, rng: random.Random, article: Article) -> None:
    labels = tuple(rng.sample(CATEGORIES, rng.choice((0, 1, 1, 1, 2))))
    tags = Tags(categories=labels, primary=labels[0] if labels else None,
                scores={c: 1.0 for c in labels},
                evidence={c: (Evidence("刷单", 3, 5),) for c in labels})
    status, _ = store.save_article(source=rng.choice(SOURCES), kind="police", article=article,
                                   tags=tags)
    if status != "new":
        raise SystemExit(f"generator produced a non-new article ({status}): {article.url}")


# -- measuring -----------------------------------------------------------------------------

def peak_rss_mb() -> float:
    """This process's peak resident set so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def baseline(data: Path, out: Path) -> dict[str, float]:
    """Read every article and write its fields with json.dumps: the floor for any export."""
    started = time.perf_counter()
    rows = 0
    with CorpusStore(data, create=False) as store, out.open("wb") as stream:
        for a in store.iter_articles():
            record = {"id": a.id, "url": a.url, "title": a.title, "published": a.published,
                      "source": a.source, "kind": a.kind, "text": a.text,
                      "categories": list(a.categories), "primary": a.primary,
                      "evidence": {c: [{"term": e.term, "start": e.start, "end": e.end}
                                       for e in items] for c, items in a.evidence.items()},
                      "lang": a.lang, "content_hash": a.content_hash}
            stream.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
            rows += 1
    return _timing(rows, time.perf_counter() - started)


def run_export(data: Path, out: Path, fmt: str) -> dict[str, object]:
    """export_corpus with near-duplicate grouping (the default options)."""
    started = time.perf_counter()
    stages: dict[str, float] = {}

    def progress(p: ExportProgress) -> None:
        if p.done == p.total:
            stages[p.stage] = round(time.perf_counter() - started, 2)

    with CorpusStore(data, create=False) as store:
        summary = export_corpus(store, ExportOptions(format=fmt), out, on_progress=progress)
    result: dict[str, object] = _timing(summary.rows, time.perf_counter() - started)
    result.update(duplicates_removed=summary.duplicates_removed, splits=dict(summary.splits),
                  scan_done_at_s=stages.get("scan"), bytes=out.stat().st_size)
    return result


def _timing(rows: int, seconds: float) -> dict[str, float]:
    return {"rows": rows, "seconds": round(seconds, 2),
            "docs_per_s": round(rows / seconds, 1) if seconds else 0.0,
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def dedup_quality(out: Path, docs: int, planted: dict[str, str], fmt: str
                  ) -> dict[str, float]:
    """A family is an original with its planted reposts: the export should keep exactly one
    document of each. More than one = reposts missed; none = merged into another family."""
    kept = Counter(planted.get(url, url) for url in _urls(out, fmt))
    families = docs - len(planted)
    missed = sum(count - 1 for count in kept.values())
    return {"planted_reposts": len(planted), "reposts_missed": missed,
            "recall": round(1 - missed / len(planted), 4) if planted else 1.0,
            "families_merged_into_another": families - len(kept)}


def _urls(out: Path, fmt: str) -> Iterator[str]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        yield from pq.read_table(out, columns=["url"]).column("url").to_pylist()
        return
    with out.open(encoding="utf-8") as lines:
        for line in lines:
            yield json.loads(line)["url"]


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.generate:
        planted = generate(Path(args.generate), args.docs, args.seed, args.repost_share)
        print(json.dumps(planted))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        report = _run(Path(tmp), args)
    print(json.dumps(report, indent=1, ensure_ascii=False))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                  encoding="utf-8")
    return 0


def _run(tmp: Path, args: argparse.Namespace) -> dict[str, object]:
    data = tmp / "data"
    started = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--generate", str(data), "--docs",
                            str(args.docs), "--seed", str(args.seed), "--repost-share",
                            str(args.repost_share)], check=True, capture_output=True, text=True)
    planted = json.loads(child.stdout)
    generated = round(time.perf_counter() - started, 1)
    out = tmp / f"export.{args.format}"
    report: dict[str, object] = {
        "docs": args.docs, "seed": args.seed, "format": args.format,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "generate_seconds": generated,
        "corpus_mb": round((data / "corpus.sqlite").stat().st_size / 2**20, 1),
        "baseline_json_dumps": baseline(data, tmp / "baseline.jsonl"),
        "export": run_export(data, out, args.format),
    }
    report["dedup"] = dedup_quality(out, args.docs, planted, args.format)
    return report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000, help="documents (default 100000)")
    parser.add_argument("--seed", type=int, default=20261126, help="corpus seed")
    parser.add_argument("--repost-share", type=float, default=0.1,
                        help="share of planted near-duplicate reposts (default 0.1)")
    parser.add_argument("--format", default="jsonl", choices=("jsonl", "csv", "parquet"))
    parser.add_argument("--out", help="also write the JSON report here")
    parser.add_argument("--generate", metavar="DATA", help=argparse.SUPPRESS)
    return parser


if __name__ == "__main__":
    sys.exit(main())
