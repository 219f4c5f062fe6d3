"""A deterministic synthetic anti-fraud site for crawl benchmarks, served from memory.

Articles are ~1,500 characters of Chinese notice text (sentences drawn from the tagger's dev
set, so tagging does real work), wrapped in a TRS-style page of ~10 KB with the usual
navigation and footer boilerplate; every other article is served as GBK with only a
<meta charset>. Each host has a TRS list section: index.html, index_1.html ... with a
createPageHTML() pager, 20 articles per list page.
"""

from __future__ import annotations

import http.server
import json
import multiprocessing
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEV_SET = Path(__file__).resolve().parents[1] / "tests" / "data" / "tag_dev.jsonl"
ARTICLES_PER_LIST = 20
ARTICLE_CHARS = 1500

NAV = "".join(f'<li><a href="/col{n}/index.html">栏目{n}</a></li>' for n in range(24))
FOOTER = ("<div class='footer'><p>主办单位：某市公安局 版权所有</p><p>ICP备00000000号 "
          "公网安备00000000000号</p><p>技术支持：某信息技术公司</p></div>")


@dataclass(frozen=True, slots=True)
class Site:
    """Path -> (body, content type) for each host; hosts are numbered 0..H-1."""

    pages: tuple[dict[str, tuple[bytes, str]], ...]
    article_paths: tuple[tuple[str, ...], ...]

    @property
    def article_count(self) -> int:
        return sum(len(paths) for paths in self.article_paths)


def generate_site(hosts: int, articles_per_host: int, seed: int = 20261126) -> Site:
    """Build every page of the site in memory (deterministic for a seed)."""
    rng = random.Random(seed)
    sentences = _sentences()
    pages, article_paths = [], []
    for host in range(hosts):
        host_pages: dict[str, tuple[bytes, str]] = {}
        paths = [_article_path(host, i) for i in range(articles_per_host)]
        for number, path in enumerate(paths):
            host_pages[path] = _article_page(rng, sentences, number, gbk=number % 2 == 1)
        host_pages.update(_list_pages(paths))
        host_pages["/robots.txt"] = (b"User-agent: *\nDisallow: /admin/\n", "text/plain")
        pages.append(host_pages)
        article_paths.append(tuple(paths))
    return Site(pages=tuple(pages), article_paths=tuple(article_paths))


def _article_path(host: int, number: int) -> str:
    """A TRS article URL with its date: /fzxc/202403/t20240315_100012.html."""
    month, day = 1 + number % 12, 1 + number % 28
    return f"/fzxc/2024{month:02d}/t2024{month:02d}{day:02d}_{host}{number:05d}.html"


def _sentences() -> list[str]:
    texts = [json.loads(line)["text"] for line in DEV_SET.read_text("utf-8").splitlines()]
    return [t for t in texts if len(t) > 30]


def _article_page(rng: random.Random, sentences: list[str], number: int,
                  gbk: bool) -> tuple[bytes, str]:
    body, size = [], 0
    while size < ARTICLE_CHARS:
        paragraph = rng.choice(sentences)
        body.append(f"<p style='text-indent:2em'>{paragraph}</p>")
        size += len(paragraph)
    title = rng.choice(sentences)[:24]
    charset = "gbk" if gbk else "utf-8"
    html = (f"<html><head><meta http-equiv='Content-Type' content='text/html; charset={charset}'>"
            f"<meta name='ArticleTitle' content='{title}'><meta name='PubDate' "
            f"content='2024-03-{1 + number % 28:02d} 09:00'><title>{title}_反诈中心</title></head>"
            f"<body><div class='header'><ul class='nav'>{NAV}</ul></div>"
            f"<div class='position'>当前位置：<a href='/index.html'>首页</a> &gt; 反诈宣传</div>"
            f"<h1>{title}</h1><div class='info'>发布时间：2024-03-{1 + number % 28:02d} "
            "来源：反诈中心 【字体：大 中 小】 【打印本页】 【关闭窗口】</div>"
            f"<div class='TRS_Editor'>{''.join(body)}</div>"
            f"<div class='share'>分享到：微信 微博</div>{FOOTER}</body></html>")
    encoded = html.encode("gb18030" if gbk else "utf-8", errors="replace")
    return encoded, "text/html"   # no charset in the header: the meta tag must decide


def _list_pages(paths: list[str]) -> dict[str, tuple[bytes, str]]:
    chunks = [paths[i:i + ARTICLES_PER_LIST] for i in range(0, len(paths), ARTICLES_PER_LIST)]
    lists = {}
    for number, chunk in enumerate(chunks):
        items = "".join(f"<li><a href='{p}'>反诈预警第{p[-10:-5]}号</a><span>2024-03-15</span></li>"
                        for p in chunk)
        name = "index.html" if number == 0 else f"index_{number}.html"
        html = (f"<html><head><meta charset='utf-8'><title>反诈宣传</title></head><body>"
                f"<ul class='nav'>{NAV}</ul><ul class='list'>{items}</ul>"
                f"<script>createPageHTML({len(chunks)}, {number}, \"index\", \"html\");</script>"
                f"{FOOTER}</body></html>")
        lists[f"/fzxc/{name}"] = (html.encode("utf-8"), "text/html")
    return lists


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # TCP_NODELAY, as production servers set it: the handler writes the headers and the body
    # separately, and with Nagle's algorithm the body then waits for the client's delayed
    # ACK of the headers, ~40 ms per keep-alive request (it made the benchmark measure the
    # kernel's ACK timer, not the crawler, once each host had one request in flight).
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        found = self.server.pages.get(self.path.split("?")[0])  # type: ignore[attr-defined]
        body, ctype = found if found else (b"not found", "text/plain")
        self.send_response(200 if found else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", "Fri, 15 Mar 2024 09:00:00 GMT")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt: str, *args: object) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # clients that hang up (the crawl closing pooled connections) are expected


def _serve(site: Site, ports: multiprocessing.Queue, stop: multiprocessing.Event) -> None:
    servers = []
    for host_pages in site.pages:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.pages = host_pages  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
    ports.put([s.server_address[1] for s in servers])
    stop.wait()
    for server in servers:
        server.shutdown()


@contextmanager
def serve_site(site: Site) -> Iterator[list[str]]:
    """Serve each host of `site` on its own port, from a separate process (so the server's
    CPU is not the crawler's GIL); yields the base URLs."""
    context = multiprocessing.get_context("fork")
    ports, stop = context.Queue(), context.Event()
    process = context.Process(target=_serve, args=(site, ports, stop), daemon=True)
    process.start()
    try:
        yield [f"http://127.0.0.1:{port}" for port in ports.get(timeout=30)]
    finally:
        stop.set()
        process.join(timeout=10)
