from pathlib import Path

import pytest

from crawler.config import CrawlConfig, apply_overrides, load_sources
from crawler.errors import ConfigError

GOOD = """
[[source]]
name = "city-police"
kind = "police"
start_urls = ["https://gaj.example.cn/fzxc/index.html"]
allow = ['^https://gaj\\.example\\.cn/fzxc/']
deny = ['/print/']
article = ['/t\\d{8}_\\d+\\.html$']
max_depth = 1
delay = 0.5
"""


def write(tmp_path, text):
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_file_loads_with_defaults(tmp_path):
    (source,) = load_sources(write(tmp_path, GOOD))
    assert source.name == "city-police" and source.max_pages == 200 and source.delay == 0.5
    assert source.is_allowed("https://gaj.example.cn/fzxc/202403/t20240315_1.html")
    assert not source.is_allowed("https://gaj.example.cn/fzxc/print/t.html")
    assert not source.is_allowed("https://other.cn/fzxc/")
    assert source.is_article_url("https://gaj.example.cn/fzxc/202403/t20240315_1.html")


def test_default_scope_is_the_start_hosts(tmp_path):
    (source,) = load_sources(write(tmp_path, '[[source]]\nname="a"\n'
                                   'start_urls=["http://a.cn/x/"]\n'))
    assert source.is_allowed("http://a.cn/y") and not source.is_allowed("http://b.cn/x/")
    assert not source.is_allowed("ftp://a.cn/x")
    assert source.is_article_url("http://a.cn/y") is None


@pytest.mark.parametrize(("text", "line", "problem"), [
    ("[[source]\nname='a'", 1, "TOML syntax error"),
    (GOOD.replace("delay = 0.5", "delay = 0.5\nspeed = 3"), 11, "unknown key 'speed'"),
    (GOOD.replace("allow = ['^https", "allow = ['(^https"), 6, "bad regular expression"),
    (GOOD.replace('start_urls = ["https://gaj.example.cn/fzxc/index.html"]\n', ""), 2,
     "'start_urls' must be"),
    (GOOD.replace('kind = "police"', 'kind = "bank"'), 4, "'kind' must be one of"),
    (GOOD.replace("max_depth = 1", "max_depth = -1"), 9, "'max_depth' must be"),
    (GOOD + GOOD.replace("[[source]]", "[[source]]"), None, "duplicate source name"),
])
def test_malformed_file_names_file_line_and_problem(tmp_path, text, line, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sources(path)
    assert problem in info.value.problem
    assert info.value.path == str(path)
    if line is not None:
        assert info.value.line == line
    assert str(path) in str(info.value)


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_sources(tmp_path / "nope.toml")


def test_unknown_source_override_lists_known_names(tmp_path):
    config = CrawlConfig(sources=load_sources(write(tmp_path, GOOD)))
    with pytest.raises(ConfigError, match="known: city-police"):
        apply_overrides(config, source_names=("nope",))


def test_bundled_sources_file_is_valid():
    sources = load_sources(Path(__file__).resolve().parents[1] / "seeds" / "sources.toml")
    assert len(sources) == 11
    for source in sources:
        for url in source.start_urls:
            assert source.is_allowed(url), url
