"""The fraudkb command as a user runs it: exit codes and messages (SPEC)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from crawler.textnorm import normalize_text
from servers import ScriptedServer, page

REPO = Path(__file__).resolve().parents[1]


def fraudkb(*args: str, cwd: Path = REPO, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fraudkb", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "PYTHONWARNINGS": "error"})


def test_bad_sources_file_exits_2_naming_file_line_source_and_problem(tmp_path):
    bad = tmp_path / "sources.toml"
    bad.write_text('[[source]]\nname = "city"\nstart_urls = ["http://a.cn/"]\n'
                   "allow = ['(unclosed']\n", encoding="utf-8")
    result = fraudkb("--data", str(tmp_path / "d"), "crawl", "--sources", str(bad))
    assert result.returncode == 2
    assert result.stderr.startswith(f"Error: {bad}:4: source 'city': bad regular expression")
    assert "Traceback" not in result.stderr


def test_unknown_source_name_exits_2_and_lists_known_ones(tmp_path):
    result = fraudkb("--data", str(tmp_path), "crawl", "--source", "nope")
    assert result.returncode == 2
    assert "unknown source(s) nope; known: 64365, 66law" in result.stderr


def test_stats_on_missing_data_directory_says_what_to_run_first(tmp_path):
    result = fraudkb("--data", str(tmp_path / "none"), "stats")
    assert result.returncode == 1
    assert "no corpus here yet; run `fraudkb crawl` or `fraudkb demo` first" in result.stderr


def test_help_lists_the_commands():
    result = fraudkb("--help")
    assert result.returncode == 0
    for command in ("crawl", "stats", "demo"):
        assert command in result.stdout


NOTICE = ("<html><body><h1>刷单返利诈骗预警{n}</h1><div class='article'><p>发布时间：2024-03-15</p>"
          "<p>第{n}起：骗子以兼职刷单为名，先返小额佣金，再以连单卡单为由要求受害人垫付资金，"
          "随后拉黑失联。警方提示，凡是先垫付的刷单都是诈骗。</p></div></body></html>")


def test_ctrl_c_prints_a_summary_exits_130_and_the_next_crawl_resumes(tmp_path):
    hrefs = [f"/a{n}.html" for n in range(12)]
    items = "".join(f"<a href='{h}'>通报{h}</a>" for h in hrefs)
    routes = {"/list.htm": page(f"<html><body>{items}</body></html>".encode())}
    routes.update({h: page(NOTICE.format(n=i).encode()) for i, h in enumerate(hrefs)})
    with ScriptedServer(routes) as server:
        sources = tmp_path / "sources.toml"
        sources.write_text(f'[[source]]\nname = "slow"\nstart_urls = ["{server.url("/list.htm")}"]'
                           "\narticle = ['/a\\d+\\.html$']\ndelay = 0.4\n", encoding="utf-8")
        args = [sys.executable, "-m", "fraudkb", "--data", str(tmp_path / "d"), "crawl",
                "--sources", str(sources)]
        process = subprocess.Popen(args, cwd=REPO, text=True, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE)
        _wait_for_hits(server, hrefs, at_least=3)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, err
        assert "crawl interrupted" in out and "Traceback" not in err
        first_hits = sum(server.hits(h) for h in hrefs)
        assert first_hits < len(hrefs)
        resumed = fraudkb("--data", str(tmp_path / "d"), "crawl", "--sources", str(sources))
        assert resumed.returncode == 0, resumed.stderr
        assert "crawl finished (resumed)" in resumed.stdout
        stats = fraudkb("--data", str(tmp_path / "d"), "stats", "--json")
        assert '"articles": 12' in stats.stdout
        assert all(server.hits(h) <= 2 for h in hrefs)


def _wait_for_hits(server: ScriptedServer, paths: list[str], at_least: int) -> None:
    deadline = time.monotonic() + 30
    while sum(server.hits(p) for p in paths) < at_least:
        assert time.monotonic() < deadline, "crawl never started"
        time.sleep(0.05)


def fraudkb_input(stdin: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fraudkb", *args], cwd=REPO, text=True,
                          input=stdin, capture_output=True, timeout=60)


def test_tag_json_prints_the_spec_record_with_evidence_offsets_into_the_input():
    text = "網店客服兼職：先墊付貨款刷單，完成任務後返還本金和佣金。"
    result = fraudkb_input(text, "tag", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert set(record) == {"categories", "primary", "evidence", "scores"}
    assert record["primary"] == "brushing_rebate"
    for hits in record["evidence"].values():
        for hit in hits:
            assert normalize_text(text[hit["start"]:hit["end"]]) == hit["term"]


def test_tag_jsonl_answers_one_line_per_input_line_in_order():
    lines = [json.dumps({"text": t}, ensure_ascii=False) for t in
             ("冒充公检法称你涉嫌洗钱，要求把钱转到安全账户。", "今天天气很好。")]
    result = fraudkb_input("\n".join(lines) + "\n", "tag", "--jsonl")
    assert result.returncode == 0, result.stderr
    outputs = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["primary"] for o in outputs] == ["impersonate_authority", None]


def test_tag_human_output_marks_the_evidence_when_not_a_tty():
    result = fraudkb_input("裸聊后对方以不雅视频敲诈勒索。", "tag")
    assert result.returncode == 0
    assert "sextortion" in result.stdout and "[裸聊]" in result.stdout


def test_eval_tags_reports_per_category_scores_and_summary():
    result = fraudkb("eval-tags", "tests/data/tag_dev.jsonl")
    assert result.returncode == 0, result.stderr
    for label in ("precision", "recall", "macro F1", "micro F1", "primary accuracy",
                  "brushing_rebate"):
        assert label in result.stdout


def test_eval_tags_on_a_bad_line_exits_2_naming_file_and_line(tmp_path):
    bad = tmp_path / "dev.jsonl"
    bad.write_text('{"text": "刷单", "categories": ["brushing_rebate"]}\n{oops\n', encoding="utf-8")
    result = fraudkb("eval-tags", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2" in result.stderr


def test_retag_reports_how_many_documents_changed_labels(tmp_path):
    from crawler.records import Article, Tags
    from crawler.store import CorpusStore

    texts = {"http://a.cn/1.html": "兼职刷单先垫付，返利佣金都是诈骗。",
             "http://a.cn/2.html": "本校图书馆周末照常开放。"}
    with CorpusStore(tmp_path) as store, store.transaction():
        for url, text in texts.items():
            store.save_article(source="s", kind="campus", tags=Tags(),
                               article=Article(url=url, title="通知", published=None, text=text))
    first = fraudkb("--data", str(tmp_path), "retag")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("re-tagged 2 documents: 1 changed labels")
    again = fraudkb("--data", str(tmp_path), "retag")
    assert again.stdout.startswith("re-tagged 2 documents: 0 changed labels")


def test_demo_crawls_the_bundled_site_and_searches_jianzhi_kefu(tmp_path):
    result = fraudkb("--data", str(tmp_path / "d"), "demo")
    assert result.returncode == 0, result.stderr
    assert "crawl finished" in result.stdout and "failed 0" in result.stdout
    assert "$ fraudkb search 兼职 客服" in result.stdout
    assert "notices match 兼职 客服" in result.stdout
    assert "[兼职]" in result.stdout and "[客服]" in result.stdout
    # the corpus and index it leaves behind answer further searches
    excluded = fraudkb("--data", str(tmp_path / "d"), "search", "兼职", "-客服", "--json")
    assert excluded.returncode == 0, excluded.stderr
    hits = json.loads(excluded.stdout)
    assert hits and all("客服" not in h["snippet"] for h in hits)
    for key in ("url", "title", "published", "source", "categories", "score", "snippet"):
        assert key in hits[0]
    junk = fraudkb("--data", str(tmp_path / "d"), "search", "兼职:客服 (AND", '"', "OR", "-")
    assert junk.returncode == 0 and "Traceback" not in junk.stderr
    unknown = fraudkb("--data", str(tmp_path / "d"), "search", "兼职", "--category", "phishing")
    assert unknown.returncode == 2
    assert "unknown category phishing; valid ids: brushing_rebate" in unknown.stderr
    elsewhere = fraudkb("--data", str(tmp_path / "d"), "search", "兼职", "客服",
                        "--category", "sextortion")
    assert elsewhere.returncode == 0, elsewhere.stderr
    assert "no notices match 兼职 客服" in elsewhere.stdout
    assert "in other categories: brushing_rebate" in elsewhere.stdout


def test_search_without_a_corpus_says_what_to_run_first(tmp_path):
    result = fraudkb("--data", str(tmp_path / "none"), "search", "兼职")
    assert result.returncode == 1
    assert "no corpus here yet; run `fraudkb crawl` or `fraudkb demo` first" in result.stderr


def test_export_never_overwrites_a_readme_it_did_not_write(tmp_path):
    data = tmp_path / "d"
    assert fraudkb("--data", str(data), "demo").returncode == 0
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "README.md").write_text("# my notes\n", encoding="utf-8")
    result = fraudkb("--data", str(data), "export", "--out", str(folder / "train.jsonl"))
    assert result.returncode == 2
    assert "README.md" in result.stderr and "Traceback" not in result.stderr
    assert (folder / "README.md").read_text(encoding="utf-8") == "# my notes\n"
    assert not (folder / "train.jsonl").exists()
    streamed = fraudkb("--data", str(data), "export", "--format", "jsonl")
    assert streamed.returncode == 0
    rows = [json.loads(line) for line in streamed.stdout.splitlines()]
    assert rows and list(rows[0]) == ["id", "url", "title", "published", "source", "kind",
                                      "text", "categories", "primary", "evidence", "lang",
                                      "content_hash", "dup_group", "split"]
