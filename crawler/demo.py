"""The bundled demo site: a fictional police 反诈 section (TRS style) and a campus 保卫处
section (WebPlus style), served on 127.0.0.1 so `fraudkb demo` runs the whole job offline."""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from crawler.config import SourceConfig

DEMO_SITE = Path(__file__).parent / "demo_site"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files, no directory listings, no access log on stderr."""

    def log_message(self, fmt: str, *args: object) -> None:
        pass

    def list_directory(self, path):  # type: ignore[override]
        self.send_error(404, "not found")
        return None


@contextlib.contextmanager
def serve_directory(root: Path = DEMO_SITE) -> Iterator[str]:
    """Serve `root` over HTTP on 127.0.0.1 (an OS-chosen port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="demo-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def demo_sources(base_url: str) -> tuple[SourceConfig, ...]:
    """The two demo sources, scoped like real ones (allow by path, article URL patterns)."""
    base = re.escape(base_url)
    police = SourceConfig(
        name="demo-police", kind="police",
        start_urls=(f"{base_url}/index.html", f"{base_url}/fzxc/index.html"),
        allow=(re.compile(rf"^{base}/(index\.html|fzxc/|admin/)"),),
        article=(re.compile(r"/t\d{8}_\d+(_\w+)?\.html$"),),
        max_depth=2, max_pages=100, delay=0.0)
    campus = SourceConfig(
        name="demo-campus", kind="campus",
        start_urls=(f"{base_url}/bwc/2052/list.htm",),
        allow=(re.compile(rf"^{base}/bwc/"),),
        max_depth=2, max_pages=100, delay=0.0)
    return (police, campus)
