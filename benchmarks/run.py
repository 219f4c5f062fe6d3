"""fraudkb benchmarks: every measurement next to its baseline, measured in the same run.

    python -m benchmarks.run --quick      # ~2 minutes, for everyday use
    python -m benchmarks.run              # full sizes: 20k docs (index), 5k pages (crawl),
                                          # 100k docs (export); ~30 minutes on 2 cores

Each benchmark runs in its own process (so its peak RSS is its own) and writes JSON into
benchmarks/results/; this script prints one table of the figures and writes
benchmarks/results/summary.json. Needs the bench extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


@dataclass(frozen=True, slots=True)
class Sizes:
    tag_mb: float
    index_docs: int
    export_docs: int
    crawl_pages: int
    repeat: int


QUICK = Sizes(tag_mb=1.0, index_docs=1000, export_docs=5000, crawl_pages=500, repeat=1)
FULL = Sizes(tag_mb=8.0, index_docs=20000, export_docs=100_000, crawl_pages=5000, repeat=3)


def _run_json(args: list[str], out: Path) -> dict:
    """Run one benchmark script with `--out`, return its JSON report."""
    started = time.perf_counter()
    subprocess.run([sys.executable, *args, "--out", str(out)], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    print(f"  {args[0]} done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return json.loads(out.read_text(encoding="utf-8"))


def cold_search(index_docs: int, runs: int = 5) -> dict:
    """Wall time of a cold `fraudkb search` vs a cold `import whoosh, jieba`."""
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        subprocess.run([sys.executable, "benchmarks/bench_index.py", "--docs", str(index_docs),
                        "--build-only", tmp], cwd=ROOT, check=True, capture_output=True)
        search = [sys.executable, "-m", "fraudkb", "--data", tmp, "search", "诈骗", "客服"]
        segmented = [sys.executable, "-m", "fraudkb", "--data", tmp, "search", "冒充客服退款骗局"]
        imports = [sys.executable, "-c", "import whoosh, jieba"]
        return {"fraudkb_search_s": _median_wall(search, runs),
                "fraudkb_search_needs_segmenting_s": _median_wall(segmented, runs),
                "baseline_import_whoosh_jieba_s": _median_wall(imports, runs)}


def _median_wall(command: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 3)


def run_all(sizes: Sizes) -> dict:
    RESULTS.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                "platform": platform.platform()},
                    "sizes": asdict(sizes)}
    report["tag"] = _run_json(["benchmarks/bench_tag.py", "--mb", str(sizes.tag_mb),
                               "--repeat", str(sizes.repeat)], RESULTS / "tag.json")
    report["index"] = _run_json(["benchmarks/bench_index.py", "--docs", str(sizes.index_docs)],
                                RESULTS / "index.json")
    report["cold_search"] = cold_search(sizes.index_docs)
    report["export"] = _run_json(["benchmarks/bench_export.py", "--docs",
                                  str(sizes.export_docs)], RESULTS / "export.json")
    report["crawl"] = _run_json(["-m", "benchmarks.bench_crawl", "--pages",
                                 str(sizes.crawl_pages), "--repeat", str(sizes.repeat)],
                                RESULTS / "crawl.json")
    return report


def table(report: dict) -> str:
    """One row per measurement: ours, the baseline, the ratio, peak RSS."""
    rows = [("measurement", "fraudkb", "baseline (same run)", "ratio", "peak RSS MB")]
    rows += _rows(report)
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))
                     for r in rows)


def _rows(r: dict) -> list[tuple]:
    crawl, polite = r["crawl"]["crawl"], r["crawl"]["politeness"]
    index, ours = r["index"], r["index"]["ours"]
    stock, fts = index["stock_whoosh_jieba"], index["sqlite_fts5"]
    build = max(v["docs_per_s"] for v in ours["build"].values())
    export, cold, tag = r["export"], r["cold_search"], r["tag"]
    return [
        ("crawl, pages/s", crawl["crawl_pages_per_s"],
         f"trafilatura.extract only: {crawl['extract_baseline_pages_per_s']}",
         crawl["crawl_vs_baseline"], crawl["first_crawl"]["peak_rss_mb"]),
        ("re-crawl unchanged, s", crawl["recrawl_seconds"],
         f"first crawl: {crawl['first_crawl']['seconds']:.2f}", crawl["recrawl_vs_first"], ""),
        ("crawl's HTTP client, CPU µs per GET", crawl["http"]["aionet_us_per_get"],
         f"on httpcore's anyio layer: {crawl['http']['anyio_us_per_get']}",
         crawl["http"]["aionet_vs_anyio"], ""),
        (f"polite crawl H={polite['hosts']} d={polite['delay']}, pages/s",
         polite["pages_per_s"], f"ceiling H/d: {polite['ceiling_pages_per_s']}",
         polite["share_of_ceiling"], ""),
        ("tagging, MB/s", tag["tag_mb_per_s"], f"re alternation: {tag['regex_mb_per_s']}",
         round(tag["tag_mb_per_s"] / tag["regex_mb_per_s"], 1), ""),
        (f"tagging, tag_many by {tag['batch_size']}, MB/s", tag["tag_many_mb_per_s"],
         f"re alternation: {tag['regex_mb_per_s']}",
         round(tag["tag_many_mb_per_s"] / tag["regex_mb_per_s"], 1), ""),
        ("tagging written notices, MB/s", tag["written_tag_mb_per_s"],
         f"re alternation: {tag['written_regex_mb_per_s']}",
         round(tag["written_tag_mb_per_s"] / tag["written_regex_mb_per_s"], 1), ""),
        (f"tagging written notices, tag_many by {tag['batch_size']}, MB/s",
         tag["written_tag_many_mb_per_s"], f"re alternation: {tag['written_regex_mb_per_s']}",
         round(tag["written_tag_many_mb_per_s"] / tag["written_regex_mb_per_s"], 1), ""),
        ("index build, docs/s", build, f"stock Whoosh+jieba: {stock['build']['docs_per_s']}",
         round(build / stock["build"]["docs_per_s"], 1), ""),
        ("query p50/p99, ms", _pair(ours["query"]), f"FTS5: {_pair(fts['query'])}", "", ""),
        ("query+snippets p50/p99, ms", _pair(ours["query_snippets"]),
         f"FTS5: {_pair(fts['query_snippets'])}; stock Whoosh: "
         f"{_pair(stock['query_snippets'])}", "", ""),
        ("cold `fraudkb search`, s", cold["fraudkb_search_s"],
         f"import whoosh, jieba: {cold['baseline_import_whoosh_jieba_s']}",
         round(cold["fraudkb_search_s"] / cold["baseline_import_whoosh_jieba_s"], 2), ""),
        ("export with near-dup groups, docs/s", export["export"]["docs_per_s"],
         f"json.dumps only: {export['baseline_json_dumps']['docs_per_s']}",
         round(export["export"]["docs_per_s"] / export["baseline_json_dumps"]["docs_per_s"], 2),
         export["export"]["peak_rss_mb"]),
    ]


def _pair(latency: dict) -> str:
    return f"{latency['p50_ms']}/{latency['p99_ms']}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under 2 minutes")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = run_all(QUICK if args.quick else FULL)
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    (RESULTS / "summary.json").write_text(json.dumps(report, indent=1, ensure_ascii=False),
                                          encoding="utf-8")
    print(table(report))
    print(f"\n{'quick' if args.quick else 'full'} run, {report['wall_seconds']} s; JSON in "
          f"{RESULTS.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
