"""Crash and resume: `fraudkb crawl` killed with SIGKILL at random moments (seeded), then run
again until it finishes, loses nothing, stores nothing twice, and its own index update
converges on the corpus (no `fraudkb reindex`). The site starts with 40 notices and publishes
3 more before every round, so each round has new articles to fetch, extract and write.

CI kills 5 times; `FRAUDKB_LONG=1` kills 25 times (`FRAUDKB_CRASH_KILLS=N` for any other
number, `FRAUDKB_SEED=S` to replay a run). Kill moments mix four strategies: a random time
after start; a few ms after the server served the k-th new article (fetch, extract and the
batched write are in flight); a random moment after the summary is printed (the index update
is running); and Ctrl-C (which must end in a clean summary, exit 130, no traceback).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
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
    write_sources,
)
from servers import ScriptedServer

LONG = os.environ.get("FRAUDKB_LONG") == "1"
KILLS = int(os.environ.get("FRAUDKB_CRASH_KILLS", "25" if LONG else "5"))
SEED = int(os.environ.get("FRAUDKB_SEED", "20261126"))
ARTICLES = 40
PUBLISHED_PER_ROUND = 3
DELAY = 0.05            # seconds between requests: the whole crawl takes ~2.5 s
STRATEGIES = ("time", "hits", "index", "sigint")


@dataclass(frozen=True, slots=True)
class Round:
    strategy: str
    alive_at_kill: bool         # the signal reached a running crawl (a real crash point)
    returncode: int


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll `condition` every 5 ms; False on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def crash_round(rng: random.Random, site: GrowingSite, server: ScriptedServer, data: Path,
                sources: Path, out: Path) -> Round:
    """Publish a few notices, start a crawl, hit it at one random moment with the round's
    strategy, reap it."""
    site.publish(PUBLISHED_PER_ROUND)
    paths = site.paths
    strategy = rng.choice(STRATEGIES)
    served = sum(server.hits(p) for p in paths)
    with out.open("w") as stdout, (out.with_suffix(".err")).open("w") as stderr:
        process = subprocess.Popen(fraudkb_args(data, "crawl", "--sources", str(sources)),
                                   cwd=REPO, env=fraudkb_env(), stdout=stdout, stderr=stderr)
        try:
            if strategy == "hits":
                target = served + rng.randint(1, 2 * PUBLISHED_PER_ROUND)
                wait_until(lambda: sum(server.hits(p) for p in paths) >= target
                           or process.poll() is not None)
                time.sleep(rng.uniform(0, 0.03))
            elif strategy == "index":
                wait_until(lambda: "crawl " in out.read_text() or process.poll() is not None)
                time.sleep(rng.uniform(0, 0.25))
            else:
                time.sleep(rng.uniform(0.3, 2.5))
            alive = process.poll() is None
            process.send_signal(signal.SIGINT if strategy == "sigint" else signal.SIGKILL)
            returncode = process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    err = out.with_suffix(".err").read_text()
    assert "Traceback" not in err, err
    if strategy == "sigint" and alive:
        # -SIGINT: the signal came after the command's last line, as the interpreter exited
        assert returncode in (0, 130) or (returncode == -signal.SIGINT and "index:" in err), err
        summary = out.read_text()
        if returncode == 130 and "crawl interrupted" in summary:
            assert "Interrupted: finished pages are saved" in err
        elif returncode == 130:     # Ctrl-C after the crawl, while the index was updated
            assert "crawl finished" in summary and err.endswith("Interrupted.\n"), err
    return Round(strategy, alive, returncode)


def finish(data: Path, sources: Path) -> subprocess.CompletedProcess:
    """Run `crawl` until a fresh (not resumed) crawl finishes with exit 0. A resumed crawl
    works through the queue of the crawl it resumes, which was planned before the newest
    notices were published; the next crawl starts from the list pages and finds them."""
    for _ in range(3):
        result = subprocess.run(fraudkb_args(data, "crawl", "--sources", str(sources)),
                                cwd=REPO, env=fraudkb_env(), capture_output=True, text=True,
                                timeout=120)
        assert "Traceback" not in result.stderr, result.stderr
        assert result.returncode == 0, result.stderr
        if "crawl finished in" in result.stdout:
            return result
    raise AssertionError(f"no fresh crawl finished: {result.stdout}\n{result.stderr}")


def kill_and_finish(rng: random.Random, kills: int, data: Path, sources_path: Path,
                    logs: Path) -> tuple[list[Round], GrowingSite, str, str, int]:
    """Run `kills` crash rounds against a growing site, then crawl until finished."""
    site = GrowingSite(ARTICLES - PUBLISHED_PER_ROUND)
    with ScriptedServer(site.routes) as server:
        base = server.url("")
        sources = write_sources(sources_path, base + "/list1.htm", DELAY)
        rounds = [crash_round(rng, site, server, data, sources, logs / f"round{n}.out")
                  for n in range(kills)]
        final = finish(data, sources)
        fetches = sum(server.hits(p) for p in site.paths)
    return rounds, site, base, final.stdout.strip(), fetches


def assert_converged(data: Path, base: str, site: GrowingSite, seed: int) -> None:
    """Integrity ok, every published article stored once, the index holds exactly them."""
    assert integrity(data) == "ok"
    stored = [url for (url,) in corpus_rows(data, "SELECT url FROM articles")]
    assert sorted(stored) == sorted(base + p for p in site.published), f"seed {seed}"
    ids = {doc_id for (doc_id,) in corpus_rows(data, "SELECT id FROM articles")}
    indexed = indexed_ids(data)
    assert max(indexed.values()) == 1, f"seed {seed}: an id is indexed twice"
    assert set(indexed) == ids and sum(indexed.values()) == len(ids) == len(site.published)
    queue = corpus_rows(data, "SELECT COUNT(*) FROM frontier WHERE state != 'done'")
    assert queue == [(0,)]


def test_crawl_killed_at_random_moments_then_resumed_stores_every_article_once(
        tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data = tmp_path / "data"
    rounds, site, base, final, fetches = kill_and_finish(rng, KILLS, data,
                                                         tmp_path / "sources.toml", tmp_path)
    crash_points = sum(r.alive_at_kill for r in rounds)
    print(f"\nseed {SEED}: {len(rounds)} kills, {crash_points} hit a running crawl "
          f"({dict(Counter(r.strategy for r in rounds if r.alive_at_kill))}); "
          f"{fetches} article fetches for {len(site.published)} articles; final: {final}")
    assert crash_points >= min(KILLS, 2), rounds    # not vacuous: most rounds hit a crawl
    assert_converged(data, base, site, SEED)


@pytest.mark.skipif(not LONG, reason="long mode only (FRAUDKB_LONG=1)")
def test_many_seeds_of_kills_all_converge(tmp_path: Path) -> None:
    """Long mode: five more seeds of 10 kills each, each on a fresh data directory."""
    survived = 0
    for offset in range(1, 6):
        data = tmp_path / f"data{offset}"
        logs = tmp_path / f"logs{offset}"
        logs.mkdir()
        rounds, site, base, _, _ = kill_and_finish(random.Random(SEED + offset), 10, data,
                                                   tmp_path / f"s{offset}.toml", logs)
        survived += sum(r.alive_at_kill for r in rounds)
        assert_converged(data, base, site, SEED + offset)
    print(f"\nseeds {SEED + 1}..{SEED + 5}: 50 kills, {survived} hit a running crawl")
