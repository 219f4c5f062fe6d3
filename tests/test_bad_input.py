"""Bad files and queries through the CLI: malformed sources.toml and categories.toml exit 2
naming file, line and problem; an unknown --category lists the valid ids; any junk query
gives exit 0 or a one-line message, never a traceback.

(The loaders' own checks are in test_config.py and test_taxonomy.py; test_cli.py has a bad
regex in allow, the unknown --source, and one junk query on the demo corpus.)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawler.records import Article
from crawler.store import CorpusStore
from crawler.tag import build_matcher
from crawler.taxonomy import KNOWN_CATEGORY_IDS, default_categories_path, load_taxonomy
from fixture_site import REPO, article_html, fraudkb_env, run_main
from index.build import update_index

SOURCE = '[[source]]\nname = "city"\nstart_urls = ["http://a.cn/"]\n'
CATEGORIES = ('version = 1\n\n[[category]]\nid = "brushing_rebate"\nname = "刷单返利类"\n'
              'description = "刷单返利"\n\n[category.keywords]\n"刷单" = 3.5\n"垫付" = 1.0\n')


def fraudkb(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fraudkb", *args], cwd=REPO, text=True,
                          input=stdin, capture_output=True, timeout=60, env=fraudkb_env())


# -- sources.toml --------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "message"), [
    (SOURCE + "delay = 1.0 2\n",
     "{path}:4: TOML syntax error: Expected newline or end of document after a statement "
     "(at line 4, column 13)"),
    (SOURCE + "speed = 3\n",
     "{path}:4: source 'city': unknown key 'speed' (known keys: allow, article, delay, deny, "
     "kind, max_depth, max_pages, name, start_urls)"),
    ('[[source]]\nname = "city"\nkind = "police"\n',
     "{path}:1: source 'city': 'start_urls' must be a non-empty list of http(s) URLs"),
    ('[[source]]\nstart_urls = ["http://a.cn/"]\n',
     "{path}:1: source #1: 'name' must be a non-empty string of letters, digits, '-', '_', "
     "'.'"),
    (SOURCE + "deny = ['[unclosed']\n",
     "{path}:4: source 'city': bad regular expression in 'deny': '[unclosed': unterminated "
     "character set at position 0"),
    (SOURCE + "article = ['a{2']\nallow = ['(?P<x']\n",
     "{path}:5: source 'city': bad regular expression in 'allow': '(?P<x': missing >, "
     "unterminated name at position 4"),
    ('[[source]]\nname = "city"\nstart_urls = ["ftp://a.cn/"]\n',
     "{path}:3: source 'city': start URL 'ftp://a.cn/' is not an http(s) URL"),
    ('title = "sources"\n', "{path}: unknown top-level key(s): title"),
], ids=["syntax", "unknown-key", "missing-start-urls", "missing-name", "bad-deny-regex",
        "bad-allow-regex", "ftp-start-url", "unknown-top-level"])
def test_malformed_sources_file_exits_2_with_file_line_and_problem(
        tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "sources.toml"
    path.write_text(text, encoding="utf-8")
    result = fraudkb("--data", str(tmp_path / "d"), "crawl", "--sources", str(path))
    assert result.returncode == 2
    assert result.stderr == "Error: " + message.format(path=path) + "\n"
    assert not (tmp_path / "d").exists(), "a bad config must not create the data directory"


def test_missing_sources_file_exits_2_naming_it(tmp_path: Path) -> None:
    result = fraudkb("--data", str(tmp_path / "d"), "crawl", "--sources",
                     str(tmp_path / "nope.toml"))
    assert (result.returncode, result.stderr) == (2, f"Error: {tmp_path}/nope.toml: file not "
                                                     "found\n")


# -- categories.toml -----------------------------------------------------------------------
@pytest.mark.parametrize(("old", "new", "message"), [
    ('"垫付" = 1.0', '"垫付" = 1.0 x',
     "{path}:10: TOML syntax error: Expected newline or end of document after a statement"),
    ('description = "刷单返利"', 'description = "刷单返利"\ncolour = "red"',
     "{path}:7: unknown key 'colour' in [[category]]; allowed: combo, description, exclude, "
     "id, keywords, name, negative, threshold"),
    ('name = "刷单返利类"\n', "", "{path}:3: category is missing the required field `name`"),
], ids=["syntax", "unknown-key", "missing-field"])
@pytest.mark.parametrize("command", [("tag",), ("crawl", "--sources", "seeds/sources.toml")],
                         ids=["tag", "crawl"])
def test_malformed_categories_file_exits_2_with_file_line_and_problem(
        tmp_path: Path, old: str, new: str, message: str, command: tuple[str, ...]) -> None:
    path = tmp_path / "categories.toml"
    assert old in CATEGORIES
    path.write_text(CATEGORIES.replace(old, new), encoding="utf-8")
    result = fraudkb("--data", str(tmp_path / "d"), "--categories", str(path), *command,
                     stdin="刷单")
    assert result.returncode == 2
    assert result.stderr == "Error: " + message.format(path=path) + "\n"


def test_categories_file_from_the_environment_is_checked_too(tmp_path: Path) -> None:
    path = tmp_path / "categories.toml"
    path.write_text(CATEGORIES.replace("version = 1", "version = 0"), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "fraudkb", "tag"], cwd=REPO, text=True,
                            input="刷单", capture_output=True, timeout=60,
                            env={**fraudkb_env(), "FRAUDKB_CATEGORIES": str(path)})
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: {path}:1: ") and "version" in result.stderr


# -- --category ----------------------------------------------------------------------------
def test_unknown_category_lists_every_valid_id_before_looking_for_a_corpus(
        tmp_path: Path) -> None:
    result = fraudkb("--data", str(tmp_path / "none"), "search", "兼职", "--category",
                     "phishing", "--category", "fake_loan")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last == ("Error: Invalid value for --category: unknown category phishing; valid "
                    f"ids: {', '.join(KNOWN_CATEGORY_IDS)}")
    assert len(KNOWN_CATEGORY_IDS) == 14


# -- junk queries --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A corpus of 12 notices and its index, written directly (no crawl)."""
    data = tmp_path_factory.mktemp("search")
    tagger = build_matcher(load_taxonomy(default_categories_path()))
    with CorpusStore(data) as store:
        with store.transaction():
            for number in range(12):
                html = article_html(number).decode()
                text = html.split("<p>")[-1].split("</p>")[0]
                title = html.split("<h1>")[1].split("</h1>")[0]
                store.save_article(source="site", kind="police", tags=tagger.tag(text),
                                   article=Article(f"http://a.cn/a{number}.html", title,
                                                   "2024-03-15", text))
        update_index(store, data / "index")
    return data


OPERATORS = ("OR", "AND", "NOT", "-", "--", "+", '"', "'", "(", ")", "[", "]", "{", "}", ":",
             "*", "?", "~", "^", "\\", "/", "!", "|", "&", "=", "<", ">", "TO", "title:",
             "text:", "id:", "published:", "*:*", "诈骗", "兼职", "客服", "刷单", "詐騙", " ",
             "", "\t", "\x00", "%", "OR OR", '""', "()", "-诈骗", '"兼职 客服"', "2024", "..")
junk = st.lists(st.one_of(st.sampled_from(OPERATORS), st.text(max_size=8)), min_size=1,
                max_size=12)


@settings(max_examples=300, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=junk, as_one=st.booleans(), as_json=st.booleans())
def test_junk_query_exits_0_or_with_a_one_line_message(
        data_dir: Path, pieces: list[str], as_one: bool, as_json: bool) -> None:
    terms = ["".join(pieces)] if as_one else pieces
    flags = ["--json"] if as_json else []
    code, out, err = run_main("--data", str(data_dir), "search", *flags, *terms)
    assert "Traceback" not in err
    if code == 0:
        assert out
    else:
        # e.g. an empty query: click's usage error, whose message is its last line
        assert code == 2, err
        assert err.strip().splitlines()[-1].startswith("Error: "), err


@pytest.mark.parametrize("terms", [
    ['兼职:客服 (AND', '"', "OR", "-"], ["title:", "*:*"], ['"unclosed phrase'],
    ["-诈骗"], ["OR"], ["((((((((诈骗"], ["\\"], ["--", "-x"], ["--limit"], ["--since", "x"]])
def test_junk_query_in_a_real_process_has_no_traceback(data_dir: Path, terms: list[str]
                                                       ) -> None:
    result = fraudkb("--data", str(data_dir), "search", *terms)
    assert "Traceback" not in result.stderr
    assert result.returncode in (0, 2), result.stderr
    if result.returncode:
        assert result.stderr.strip().splitlines()[-1].startswith("Error: ")
