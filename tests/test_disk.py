"""A read-only or full disk under `fraudkb crawl`: exit 1 with a message naming the path and
the problem, no traceback, the corpus intact (integrity_check ok, earlier articles kept),
and the next crawl on a healthy disk resumes and converges.

Tests run as root, where chmod does not stop writes, so the read-only and the tiny disks are
real filesystems: a read-only bind mount and a small tmpfs, each made inside `unshare -rm`
(a private user + mount namespace; no privileges needed, nothing visible outside). Where
namespaces are not allowed those tests skip; the file-size limit (RLIMIT_FSIZE, which the
kernel enforces for root too) simulates a full disk everywhere.
"""

from __future__ import annotations

import resource
import shlex
import shutil
import subprocess
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
    write_sources,
)
from servers import ScriptedServer

FIRST = 10          # articles crawled on a healthy disk first
MORE = 300          # then published, for the crawl that meets the bad disk
Crawled = tuple[GrowingSite, ScriptedServer, Path, Path]   # site, server, data, sources


def namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True, timeout=30)
    return probe.returncode == 0


needs_namespaces = pytest.mark.skipif(not namespaces_work(),
                                      reason="unshare -rm (user+mount namespaces) not allowed")


@pytest.fixture
def crawled(tmp_path: Path) -> Iterator[Crawled]:
    """A data directory holding a finished crawl of FIRST articles; then MORE are published."""
    site = GrowingSite(FIRST, capacity=FIRST + MORE)
    with ScriptedServer(site.routes) as server:
        sources = write_sources(tmp_path / "sources.toml", server.url("/list1.htm"), 0.0)
        data = tmp_path / "data"
        assert crawl(data, sources).returncode == 0
        site.publish(MORE)
        yield site, server, data, sources


def crawl(data: Path, sources: Path, **options: object) -> subprocess.CompletedProcess:
    return subprocess.run(fraudkb_args(data, "crawl", "--sources", str(sources)), cwd=REPO,
                          env=fraudkb_env(), capture_output=True, text=True, timeout=120,
                          **options)


def in_namespace(script: str) -> subprocess.CompletedProcess:
    """Run a shell script as root of a private user + mount namespace."""
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, env=fraudkb_env(),
                          capture_output=True, text=True, timeout=180)


def assert_intact(data: Path, at_least: int) -> int:
    """integrity_check ok and at least the earlier articles kept; returns the count."""
    assert integrity(data) == "ok"
    (count,), = corpus_rows(data, "SELECT COUNT(*) FROM articles")
    assert count >= at_least
    return count


def assert_resumes_and_converges(site: GrowingSite, server: ScriptedServer, data: Path,
                                 sources: Path) -> None:
    """The next crawl on a healthy disk stores every article once and indexes exactly them."""
    result = crawl(data, sources)
    assert result.returncode == 0, result.stderr
    urls = sorted(url for (url,) in corpus_rows(data, "SELECT url FROM articles"))
    assert urls == sorted(server.url(p) for p in site.published)
    indexed = indexed_ids(data)
    assert len(indexed) == len(urls) == FIRST + MORE and max(indexed.values()) == 1


@needs_namespaces
def test_crawl_into_a_read_only_data_directory_exits_1_naming_it(crawled: Crawled) -> None:
    site, server, data, sources = crawled
    command = shlex.join(fraudkb_args(data, "crawl", "--sources", str(sources)))
    result = in_namespace(f"mount --bind -o ro {data} {data} && exec {command}")
    assert result.returncode == 1
    assert result.stderr == (f"Error: {data}/corpus.sqlite: cannot open corpus: unable to open "
                             f"database file; the data directory {data} is read-only: use a "
                             "writable --data directory\n")
    assert result.stdout == ""
    assert assert_intact(data, FIRST) == FIRST
    assert_resumes_and_converges(site, server, data, sources)


@needs_namespaces
def test_read_only_index_fails_the_crawl_after_saving_and_the_next_crawl_indexes_all(
        crawled: Crawled) -> None:
    site, server, data, sources = crawled
    index = data / "index"
    command = shlex.join(fraudkb_args(data, "crawl", "--sources", str(sources)))
    result = in_namespace(f"mount --bind -o ro {index} {index} && exec {command}")
    assert result.returncode == 1
    assert "crawl finished" in result.stdout
    assert result.stderr.endswith(f"Error: [Errno 30] Read-only file system: "
                                  f"'{index}/write.lock'\n")
    assert "Traceback" not in result.stderr
    assert assert_intact(data, FIRST + MORE) == FIRST + MORE
    assert len(indexed_ids(data)) == FIRST
    assert_resumes_and_converges(site, server, data, sources)


@needs_namespaces
def test_disk_full_during_a_crawl_exits_1_and_keeps_what_was_written(
        crawled: Crawled, tmp_path: Path) -> None:
    site, server, data, sources = crawled
    disk = tmp_path / "disk"
    disk.mkdir()
    small = disk / "data"
    command = shlex.join(fraudkb_args(small, "crawl", "--sources", str(sources)))
    # a 1.5 MB disk holding a copy of the data: room for some of the new articles only;
    # the data is copied back out for checking, as the tmpfs dies with the namespace
    result = in_namespace(
        f"mount -t tmpfs -o size=1500k tmpfs {disk} && cp -a {data} {small} && {command}; "
        f"code=$?; rm -rf {data} && cp -a {small} {data}; exit $code")
    assert result.returncode == 1
    assert result.stderr == (f"Error: {small}/corpus.sqlite: cannot write: database or disk "
                             "is full; check the free disk space, then run the same command "
                             "again (a crawl resumes where it stopped)\n")
    stored = assert_intact(data, FIRST)
    assert stored < FIRST + MORE
    assert_resumes_and_converges(site, server, data, sources)


def test_file_size_limit_during_a_crawl_exits_1_then_the_crawl_resumes(
        crawled: Crawled) -> None:
    site, server, data, sources = crawled
    limit = 400 * 1024      # bytes per file: the WAL outgrows it part-way through the crawl

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = crawl(data, sources, preexec_fn=small_files)
    assert result.returncode == 1
    assert result.stderr == (f"Error: {data}/corpus.sqlite: cannot write: disk I/O error; "
                             "check the free disk space, then run the same command again "
                             "(a crawl resumes where it stopped)\n")
    stored = assert_intact(data, FIRST)
    assert FIRST < stored < FIRST + MORE
    assert_resumes_and_converges(site, server, data, sources)
