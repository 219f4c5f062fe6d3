"""A generated notice site (list pages with a pager, newest first, N distinct articles)
served by ScriptedServer, a sources.toml for it, and readers of what a crawl left behind:
the corpus (through sqlite3, read-only) and the index (through index.schema and Whoosh).

Used by the tests that run `python -m fraudkb` as a subprocess against it.
"""

from __future__ import annotations

import contextlib
import io
import os
import sqlite3
import sys
from collections import Counter
from pathlib import Path
from unittest import mock

from whoosh import index as whoosh_index

from fraudkb.cli import main
from index.schema import current_generation
from servers import Handler, Route, send

REPO = Path(__file__).resolve().parents[1]
ARTICLE_PATTERN = r"/a\d+\.html$"
SCAMS = ("刷单返利", "冒充客服退款", "虚假投资理财", "冒充公检法", "网络贷款", "游戏账号交易")


def article_html(number: int) -> bytes:
    """A notice page with a title, a date and a body unique to `number`."""
    scam = SCAMS[number % len(SCAMS)]
    title = f"{scam}诈骗预警第{number}号"
    body = (f"第{number}号通报：近期发生一起{scam}诈骗案件，受害人被骗{number * 37 + 1000}元。"
            f"骗子先以小额返利取得信任，再以各种理由要求转账，编号{number:05d}。"
            "警方提示：凡是要求先转账、先垫付的都是诈骗，请及时拨打96110咨询。")
    return (f"<html><head><title>{title}</title></head><body><h1>{title}</h1>"
            f"<div class='article'><p>发布时间：2024-{number % 12 + 1:02d}-15</p>"
            f"<p>{body}</p></div></body></html>").encode()


class GrowingSite:
    """A notice site that publishes more articles over time, newest first on /list1.htm
    (as real list pages are, so an incremental crawl finds the new ones on the first page).
    `routes` read the current state at request time; `publish(n)` adds n articles."""

    def __init__(self, articles: int, capacity: int = 1000, per_list: int = 10) -> None:
        self.count = articles
        self.per_list = per_list
        self.paths = [f"/a{n}.html" for n in range(capacity)]
        self.routes: dict[str, Route] = {p: self._article(n) for n, p in enumerate(self.paths)}
        self.routes.update({f"/list{n}.htm": self._list(n) for n in range(1, capacity + 1)})

    def publish(self, articles: int) -> None:
        self.count = min(len(self.paths), self.count + articles)

    @property
    def published(self) -> list[str]:
        return self.paths[:self.count]

    def _article(self, number: int) -> Route:
        def route(handler: Handler) -> None:
            if number < self.count:
                send(handler, 200, article_html(number))
            else:
                send(handler, 404, b"not found", "text/plain")
        return route

    def _list(self, number: int) -> Route:
        def route(handler: Handler) -> None:
            newest_first = self.published[::-1]
            chunk = newest_first[(number - 1) * self.per_list:number * self.per_list]
            if not chunk:
                send(handler, 404, b"not found", "text/plain")
                return
            items = "".join(f"<li><a href='{p}'>反诈预警 {p}</a><span>2024-03-15</span></li>"
                            for p in chunk)
            more = number * self.per_list < self.count
            pager = f"<a href='/list{number + 1}.htm'>下一页</a>" if more else ""
            send(handler, 200, f"<html><body><ul>{items}</ul>{pager}</body></html>".encode())
        return route


def write_sources(path: Path, start_url: str, delay: float, name: str = "site") -> Path:
    """A sources.toml with one source crawling the site from `start_url`."""
    path.write_text(f'[[source]]\nname = "{name}"\nkind = "police"\n'
                    f'start_urls = ["{start_url}"]\n'
                    f"article = ['{ARTICLE_PATTERN}']\n"
                    f"max_depth = 3\nmax_pages = 1000\ndelay = {delay}\n", encoding="utf-8")
    return path


def fraudkb_args(data: Path, *args: str) -> list[str]:
    """The command line of `python -m fraudkb --data DATA ARGS...`."""
    return [sys.executable, "-m", "fraudkb", "--data", str(data), *args]


def fraudkb_env() -> dict[str, str]:
    """The environment of a fraudkb subprocess: warnings are errors, output unbuffered."""
    return {**os.environ, "PYTHONWARNINGS": "error", "PYTHONUNBUFFERED": "1"}


def corpus_rows(data: Path, sql: str) -> list[tuple]:
    """Rows of a read-only query on the corpus of `data`."""
    db = sqlite3.connect(f"file:{data / 'corpus.sqlite'}?mode=ro", uri=True)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def integrity(data: Path) -> str:
    """SQLite's own verdict on the corpus file ("ok" when sound)."""
    return str(corpus_rows(data, "PRAGMA integrity_check")[0][0])


def indexed_ids(data: Path) -> Counter[str]:
    """How many live documents of each id the current index generation holds."""
    gen_dir = current_generation(data / "index")
    assert gen_dir is not None, "no index generation"
    ix = whoosh_index.open_dir(str(gen_dir))
    try:
        with ix.searcher() as searcher:
            ids = Counter(fields["id"] for _, fields in searcher.reader().iter_docs())
            assert sum(ids.values()) == searcher.doc_count()
            return ids
    finally:
        ix.close()


def run_main(*args: str) -> tuple[int, str, str]:
    """`fraudkb ARGS` in this process through the console-script entry point (stdout has a
    binary buffer, as export writes bytes)."""
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    err = io.StringIO()
    with (mock.patch.object(sys, "argv", ["fraudkb", *args]),
          contextlib.redirect_stdout(out), contextlib.redirect_stderr(err)):
        try:
            main()
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        else:
            code = 0
    out.flush()
    return code, out.buffer.getvalue().decode("utf-8"), err.getvalue()
