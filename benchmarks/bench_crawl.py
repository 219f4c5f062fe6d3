"""Crawl benchmark: fraudkb against a local multi-host site, each figure next to its baseline.

| measurement                       | baseline in the same run                                 |
|-----------------------------------|----------------------------------------------------------|
| crawl pages/s                     | a bare trafilatura.extract loop over the same pages,     |
|                                   | on the same number of cores (a process pool)            |
| re-crawl of the unchanged site, s | the first crawl                                          |
| polite crawl pages/s (H hosts, d) | the politeness ceiling H/d                               |
| peak RSS of the crawl process     | -                                                        |
| client CPU per GET                | the same httpx client on httpcore's anyio network layer  |

The site (benchmarks/sitegen.py) is served from another process, on one port per host.
Run: python -m benchmarks.bench_crawl [--pages 5000] [--hosts 4] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import resource
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.sitegen import Site, generate_site, serve_site


@dataclass(frozen=True, slots=True)
class CrawlRun:
    seconds: float
    pages: int
    articles: int
    peak_rss_mb: float          # the crawl process
    workers_peak_rss_mb: float  # its largest descendant: a worker or the forkserver


def extract_baseline(site: Site, workers: int) -> float:
    """Pages/s of trafilatura.extract alone over every page, on `workers` processes."""
    bodies = [body for pages in site.pages for path, (body, _) in pages.items()
              if path.endswith(".html")]
    chunks = [bodies[i::workers] for i in range(workers)]
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
        list(pool.map(_extract_all, chunks))
    return len(bodies) / (time.perf_counter() - started)


def _extract_all(bodies: list[bytes]) -> int:
    import trafilatura

    from crawler.decode import decode_bytes

    return sum(bool(trafilatura.extract(decode_bytes(body, "text/html")[0])) for body in bodies)


def crawl_once(bases: list[str], data_dir: Path, workers: int, delay: float = 0.0,
               max_pages: int = 100_000) -> CrawlRun:
    """One `crawl` of every host in a fresh process (so its RSS is its own)."""
    context = multiprocessing.get_context("forkserver")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as runner:
        return runner.submit(_crawl_child, bases, str(data_dir), workers, delay,
                             max_pages).result()


def _crawl_child(bases: list[str], data_dir: str, workers: int, delay: float,
                 max_pages: int) -> CrawlRun:
    import re

    from crawler.config import CrawlConfig, SourceConfig
    from crawler.pipeline import crawl
    from crawler.store import CorpusStore
    from crawler.tag import build_matcher
    from crawler.taxonomy import default_categories_path, load_taxonomy

    sources = tuple(SourceConfig(name=f"host{i}", kind="police",
                                 start_urls=(f"{base}/fzxc/index.html",),
                                 article=(re.compile(r"/t\d{8}_\d+\.html$"),), max_depth=2,
                                 max_pages=max_pages, delay=delay)
                    for i, base in enumerate(bases))
    tagger = build_matcher(load_taxonomy(default_categories_path()))
    config = CrawlConfig(sources=sources, workers=workers, concurrency=16,
                         max_pagination=10_000)
    sampler = _DescendantsRss()
    started = time.perf_counter()
    with CorpusStore(data_dir) as store:
        stats = crawl(config, store, tagger)
    seconds = time.perf_counter() - started
    return CrawlRun(seconds=seconds, pages=stats.fetched,
                    articles=stats.new + stats.changed + stats.unchanged,
                    peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                                      1),
                    workers_peak_rss_mb=sampler.stop())


class _DescendantsRss:
    """Samples the largest RSS of this process's descendants (the worker pool runs under a
    forkserver, so getrusage(RUSAGE_CHILDREN) never sees it)."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(0.2):
            for pid in _descendants(os.getpid()):
                self.peak_kb = max(self.peak_kb, _rss_kb(pid))

    def stop(self) -> float:
        self._done.set()
        self._thread.join()
        return round(self.peak_kb / 1024, 1)


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[1])
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(pages: int, hosts: int, workers: int, repeat: int) -> dict:
    """All crawl measurements; medians over `repeat` runs where a run is cheap enough."""
    site = generate_site(hosts, max(1, pages // hosts))
    baseline = statistics.median(extract_baseline(site, workers) for _ in range(repeat))
    firsts, seconds_again = [], []
    with serve_site(site) as bases:
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                first = crawl_once(bases, Path(tmp), workers)
                again = crawl_once(bases, Path(tmp), workers)
            firsts.append(first)
            seconds_again.append(again.seconds)
        http = http_client(site, bases)
    first = sorted(firsts, key=lambda r: r.seconds)[len(firsts) // 2]
    return {
        "site": {"pages": sum(len(p) - 1 for p in site.pages), "articles": site.article_count,
                 "hosts": hosts},
        "workers": workers,
        "crawl_pages_per_s": round(first.pages / first.seconds, 1),
        "extract_baseline_pages_per_s": round(baseline, 1),
        "crawl_vs_baseline": round(first.pages / first.seconds / baseline, 2),
        "first_crawl": asdict(first),
        "recrawl_seconds": round(statistics.median(seconds_again), 2),
        "recrawl_vs_first": round(statistics.median(seconds_again) / first.seconds, 2),
        "http": http,
    }


def http_client(site: Site, bases: list[str], per_host: int = 300, repeat: int = 3) -> dict:
    """Client CPU per GET of the crawl's httpx client on crawler.aionet, against the same
    client on httpcore's own anyio network layer (4 requests in flight, keep-alive)."""
    urls = [base + path for base, pages in zip(bases, site.pages, strict=True)
            for path in [p for p in pages if p.endswith(".html")][:per_host]]
    ours, anyio_backend = [], []
    for _ in range(repeat):
        ours.append(asyncio.run(_client_cpu_per_get(urls, anyio=False)))
        anyio_backend.append(asyncio.run(_client_cpu_per_get(urls, anyio=True)))
    return {"requests": len(urls),
            "aionet_us_per_get": round(statistics.median(ours)),
            "anyio_us_per_get": round(statistics.median(anyio_backend)),
            "aionet_vs_anyio": round(statistics.median(ours) / statistics.median(anyio_backend),
                                     2)}


async def _client_cpu_per_get(urls: list[str], anyio: bool) -> float:
    import httpcore

    from crawler.config import FetchConfig
    from crawler.httpbody import BodyPolicy
    from crawler.httpclient import exchange, make_client

    client = make_client(FetchConfig(), guard=None,
                         network=httpcore.AnyIOBackend() if anyio else None)
    policy = BodyPolicy(max_bytes=FetchConfig().max_body_bytes, is_page=True)
    in_flight = asyncio.Semaphore(4)

    async def get(url: str) -> int:
        async with in_flight:
            return len((await exchange(client, url, {}, policy)).body)

    async with client:
        started = time.process_time()
        sizes = await asyncio.gather(*(get(url) for url in urls))
        cpu = time.process_time() - started
    if not all(sizes):
        raise RuntimeError("an empty body: the benchmark site did not answer")
    return cpu / len(urls) * 1e6


def politeness(hosts: int = 8, delay: float = 0.2, per_host: int = 30) -> dict:
    """Pages/s with H hosts and a per-host delay d, against the ceiling H/d."""
    site = generate_site(hosts, per_host, seed=7)
    with serve_site(site) as bases, tempfile.TemporaryDirectory() as tmp:
        result = crawl_once(bases, Path(tmp), workers=1, delay=delay)
    ceiling = hosts / delay
    rate = result.pages / result.seconds
    return {"hosts": hosts, "delay": delay, "pages": result.pages,
            "pages_per_s": round(rate, 1), "ceiling_pages_per_s": ceiling,
            "share_of_ceiling": round(rate / ceiling, 2)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=5000, help="articles in the site")
    parser.add_argument("--hosts", type=int, default=4, help="hosts (ports) serving them")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2,
                        help="crawl worker processes and baseline processes")
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement")
    parser.add_argument("--out", type=Path, default=None, help="write the JSON here too")
    args = parser.parse_args(argv)
    report = {"crawl": run(args.pages, args.hosts, args.workers, args.repeat),
              "politeness": politeness()}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    return report


if __name__ == "__main__":
    main()
