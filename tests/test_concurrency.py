"""Readers during a crawl, and two crawls on one data directory.

`search`, `stats` and `export` run (through the CLI entry point, in this process, so 50 of
them fit in a few seconds; a few also as real processes) while a `fraudkb crawl` process
writes the corpus and then updates the index: none may fail, and what they see only grows.
A second `crawl` on the same data directory is refused with a clear message and changes
nothing; the first one finishes with the corpus and the index intact.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixture_site import (
    REPO,
    GrowingSite,
    corpus_rows,
    fraudkb_args,
    fraudkb_env,
    indexed_ids,
    integrity,
    run_main,
    write_sources,
)
from servers import ScriptedServer

READS = 50
DELAY = 0.03


def reap(process: subprocess.Popen) -> None:
    """Kill a crawl a failed test left running, and close its pipes."""
    if process.poll() is None:
        process.kill()
    process.communicate()


def crawl(data: Path, sources: Path) -> subprocess.CompletedProcess:
    return subprocess.run(fraudkb_args(data, "crawl", "--sources", str(sources)), cwd=REPO,
                          env=fraudkb_env(), capture_output=True, text=True, timeout=120)


def start_crawl(data: Path, sources: Path) -> subprocess.Popen:
    return subprocess.Popen(fraudkb_args(data, "crawl", "--sources", str(sources)), cwd=REPO,
                            env=fraudkb_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


@pytest.fixture
def site_and_sources(tmp_path: Path) -> Iterator[tuple[GrowingSite, ScriptedServer, Path]]:
    site = GrowingSite(20)
    with ScriptedServer(site.routes) as server:
        yield site, server, write_sources(tmp_path / "sources.toml",
                                          server.url("/list1.htm"), DELAY)


def read_once(data: Path, turn: int) -> tuple[str, int]:
    """One reader command; returns (command, what it counted)."""
    command = ("search", "stats", "export")[turn % 3]
    if command == "search":
        code, out, err = run_main("--data", str(data), "search", "诈骗", "--json",
                                  "--limit", "1000")
        assert code == 0, err
        return command, len(json.loads(out))
    if command == "stats":
        code, out, err = run_main("--data", str(data), "stats", "--json")
        assert code == 0, err
        return command, json.loads(out)["articles"]
    code, out, err = run_main("--data", str(data), "export", "--no-dedup")
    assert code == 0, err
    return command, len(out.splitlines())


def test_search_stats_and_export_never_fail_while_a_crawl_writes(
        tmp_path: Path, site_and_sources: tuple[GrowingSite, ScriptedServer, Path]) -> None:
    site, _, sources = site_and_sources
    data = tmp_path / "data"
    first = crawl(data, sources)
    assert first.returncode == 0, first.stderr
    site.publish(40)
    process = start_crawl(data, sources)
    seen: dict[str, list[int]] = {"search": [], "stats": [], "export": []}
    during = turn = 0
    try:
        while process.poll() is None or turn < READS:
            running = process.poll() is None
            command, count = read_once(data, turn)
            seen[command].append(count)
            during += running
            turn += 1
        _out, err = process.communicate(timeout=60)
    finally:
        reap(process)
    assert process.returncode == 0, err
    print(f"\n{turn} reads, {during} while the crawl ran; counts seen: {seen}")
    assert during >= 10, f"only {during} reads overlapped the crawl"
    for turn in range(3):   # once more each, now that the crawl and its index are done
        command, count = read_once(data, turn)
        seen[command].append(count)
    for command, counts in seen.items():
        assert counts == sorted(counts), f"{command} went backwards: {counts}"
        assert counts[0] >= 20 and counts[-1] == 60
    # a few real processes too, racing the same way against one more crawl
    site.publish(30)
    process = start_crawl(data, sources)
    results = [subprocess.run(fraudkb_args(data, *args), cwd=REPO, env=fraudkb_env(),
                              capture_output=True, text=True, timeout=60)
               for args in (("search", "诈骗"), ("stats",), ("export", "--out", "-"))]
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    for result in results:
        assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr


def test_second_crawl_on_one_data_directory_is_refused_and_changes_nothing(
        tmp_path: Path, site_and_sources: tuple[GrowingSite, ScriptedServer, Path]) -> None:
    site, server, sources = site_and_sources
    data = tmp_path / "data"
    site.publish(60)
    first = start_crawl(data, sources)
    try:
        deadline = time.monotonic() + 30
        while sum(server.hits(p) for p in site.paths) < 5:
            assert time.monotonic() < deadline and first.poll() is None, "crawl never started"
            time.sleep(0.02)
        second = crawl(data, sources)
        _out, err = first.communicate(timeout=60)
    finally:
        reap(first)
    assert second.returncode == 1
    assert second.stderr == (f"Error: {data}: another crawl (pid {first.pid}) is writing to "
                             "this data directory; wait for it to finish\n")
    assert second.stdout == ""
    assert first.returncode == 0, err
    assert integrity(data) == "ok"
    urls = sorted(url for (url,) in corpus_rows(data, "SELECT url FROM articles"))
    assert urls == sorted(server.url(p) for p in site.published)
    indexed = indexed_ids(data)
    assert max(indexed.values()) == 1 and len(indexed) == len(urls) == 80


def test_two_crawls_started_together_one_runs_one_is_refused(
        tmp_path: Path, site_and_sources: tuple[GrowingSite, ScriptedServer, Path]) -> None:
    site, _server, sources = site_and_sources
    data = tmp_path / "data"
    data.mkdir()
    processes = [start_crawl(data, sources) for _ in range(2)]
    outputs = [p.communicate(timeout=90) for p in processes]
    codes = sorted(p.returncode for p in processes)
    assert codes == [0, 1], outputs
    refused = next(err for p, (_, err) in zip(processes, outputs, strict=True)
                   if p.returncode == 1)
    assert "another crawl (pid " in refused and "Traceback" not in refused
    assert integrity(data) == "ok"
    indexed = indexed_ids(data)
    assert len(indexed) == len(site.published) and max(indexed.values()) == 1


def _open_fresh(data_dir: str, barrier, failures) -> None:
    """In a child process: wait for the others, then open (and so create) the corpus."""
    from crawler.errors import CorpusError
    from crawler.store import CorpusStore

    barrier.wait()
    try:
        CorpusStore(data_dir).close()
    except CorpusError as exc:
        failures.put(str(exc))


def test_processes_creating_one_corpus_at_once_all_open_it(tmp_path: Path) -> None:
    """Two commands started together on a new data directory (a crawl and a search, two
    crawls) must both open it; SQLite refuses a lock upgrade at once, without waiting, when
    two connections race to create the schema or switch it to WAL."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    failures = context.Queue()
    for round_number in range(30):
        data_dir = str(tmp_path / f"round{round_number}")
        barrier = context.Barrier(4)
        children = [context.Process(target=_open_fresh, args=(data_dir, barrier, failures))
                    for _ in range(4)]
        for child in children:
            child.start()
        for child in children:
            child.join(30)
    messages: list[str] = []
    while not failures.empty():
        messages.append(failures.get())
    assert messages == []
