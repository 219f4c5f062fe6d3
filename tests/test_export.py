"""Export: formats, near-duplicate groups, splits, paragraph units, atomic files, the card."""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crawler.errors import CorpusError
from crawler.records import Article, Evidence, Tags
from crawler.store import CorpusStore
from crawler.tag import build_matcher
from crawler.taxonomy import default_categories_path, load_taxonomy
from index.card import CARD_MARKER, check_card_writable, size_category
from index.dedup import DedupConfig, DuplicateFinder
from index.errors import ExportError
from index.export import (
    DOC_COLUMNS,
    PARAGRAPH_COLUMNS,
    ExportOptions,
    ExportProgress,
    export_corpus,
    parse_split_ratios,
)
from index.splits import SplitConfig, SplitUnit, assign_splits, cut_points

NOTICE = (
    "近日，我市公安机关接到多起刷单返利类诈骗警情。骗子通过社交软件、招聘网站发布“兼职刷单、"
    "日赚三百、足不出户”的广告，诱导受害人下载所谓的任务平台，先让其完成点赞关注、商品好评等"
    "小任务并返还少量佣金，取得信任后再以“连单”“卡单”“系统升级”为由要求垫付大额资金。"
    "受害人李女士在三天内先后转账十二次，共计被骗八万余元。\n"
    "警方提醒：所有要求先垫付资金的刷单兼职都是诈骗，刷单本身也是违法行为，切勿因贪图小利而"
    "落入陷阱。正规兼职不会要求缴纳任何押金、保证金，更不会要求通过私人账户转账。家长要教育"
    "在校学生不轻信网络兼职广告，不随意下载陌生应用，不向陌生人透露银行卡号和验证码。如遇可疑"
    "情况，请及时拨打全国反诈专线96110咨询，或者直接拨打110报警，并保存好聊天记录和转账凭证。"
)
REPOST = (
    "【转发扩散】市反诈中心今日发布紧急预警，请广大市民相互转告！\n"
    + NOTICE.replace("受害人李女士在三天内先后转账十二次", "受害人王先生在两天内先后转账九次")
    + "\n（来源：平安某某微信公众号，责任编辑：张明，审核：刘芳）"
)
SHORT_NOTICES = [
    "【反诈预警】3月5日，城南区居民张某遭遇刷单返利诈骗，被骗2万元。警方提醒：刷单就是诈骗，先垫付必被骗。",
    "【反诈预警】3月6日，城北区居民李某遭遇冒充客服诈骗，被骗5千元。警方提醒：退款理赔请走官方渠道。",
    "【反诈预警】3月7日，高新区学生王某遭遇游戏账号交易诈骗，被骗800元。警方提醒：买卖账号请用正规平台。",
    "【反诈预警】3月8日，开发区居民赵某遭遇虚假贷款诈骗，被骗3万元。警方提醒：放款前要交钱的都是骗子。",
    "【反诈预警】3月9日，城东区居民孙某遭遇冒充公检法诈骗，被骗10万元。警方提醒：公检法不会设安全账户。",
    "【反诈预警】3月10日，城西区居民周某遭遇网络交友诈骗，被骗6万元。警方提醒：网恋对象荐投资，必是杀猪盘。",
]
TINY_NOTICES = ["警方提醒：谨防刷单诈骗。", "警方提醒：谨防网贷诈骗。", "警方提醒：谨防裸聊诈骗。"]
POOL = ("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工"
        "也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物"
        "现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表"
        "间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军")


def tags_for(category: str | None) -> Tags:
    if category is None:
        return Tags()
    return Tags(categories=(category,), primary=category, scores={category: 2.0},
                evidence={category: (Evidence("刷单", 1, 3),)})


def add(store: CorpusStore, key: str, text: str, category: str | None = "brushing_rebate",
        published: str | None = "2024-03-01", source: str = "police-a",
        title: str = "反诈提醒") -> str:
    article = Article(url=f"https://a.gov.cn/{key}.html", title=title, published=published,
                      text=text)
    with store.transaction():
        status, doc_id = store.save_article(source=source, kind="police", article=article,
                                            tags=tags_for(category))
    assert status == "new"
    return doc_id


def random_text(rng: random.Random, chars: int = 240) -> str:
    return "".join(rng.choice(POOL) for _ in range(chars))


def fill_random(store: CorpusStore, counts: dict[str | None, int], seed: int = 7,
                prefix: str = "r") -> dict[str, str | None]:
    """Distinct random notices per primary category; returns {id: primary}."""
    rng = random.Random(seed)
    made: dict[str, str | None] = {}
    for category, count in counts.items():
        for i in range(count):
            doc_id = add(store, f"{prefix}-{category}-{i}", random_text(rng), category,
                         published=f"2023-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")
            made[doc_id] = category
    return made


def export_rows(store: CorpusStore, **options) -> list[dict]:
    buffer = io.BytesIO()
    export_corpus(store, ExportOptions(**options), buffer)
    return [json.loads(line) for line in buffer.getvalue().decode("utf-8").splitlines()]


@pytest.fixture
def store(tmp_path: Path):
    with CorpusStore(tmp_path / "data") as corpus:
        yield corpus


@pytest.fixture(scope="module")
def tagger():
    return build_matcher(load_taxonomy(default_categories_path()))


@pytest.fixture
def mixed(store: CorpusStore) -> CorpusStore:
    """A notice and its repost, short template notices, tiny ones, random filler."""
    add(store, "notice", NOTICE, published="2024-03-02", title="警惕刷单返利诈骗")
    add(store, "repost", REPOST, published="2024-03-05", source="news-b", title="转发：警惕刷单")
    for i, text in enumerate(SHORT_NOTICES + TINY_NOTICES):
        add(store, f"short{i}", text, None if i % 2 else "fake_loan", published=None)
    fill_random(store, {"fake_customer_service": 6, None: 4})
    return store


# -- records and formats -------------------------------------------------------------------

def test_records_have_the_spec_fields_in_order_with_chinese_unescaped(mixed):
    buffer = io.BytesIO()
    export_corpus(mixed, ExportOptions(), buffer)
    first = buffer.getvalue().decode("utf-8").splitlines()[0]
    record = json.loads(first)
    assert tuple(record) == DOC_COLUMNS
    assert "刷单" in first and "\\u" not in first
    assert record["evidence"] == {"brushing_rebate": [{"term": "刷单", "start": 1, "end": 3}]}
    assert record["split"] in ("train", "dev", "test")


def test_jsonl_csv_and_parquet_carry_the_same_rows(mixed, tmp_path):
    outputs = {fmt: tmp_path / "out" / f"corpus.{fmt}" for fmt in ("jsonl", "csv", "parquet")}
    for fmt, path in outputs.items():
        export_corpus(mixed, ExportOptions(format=fmt), path)
    jsonl = [json.loads(line) for line in outputs["jsonl"].read_text("utf-8").splitlines()]
    with outputs["csv"].open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == DOC_COLUMNS
        from_csv = [_decode_csv(row) for row in reader]
    table = pq.read_table(outputs["parquet"])
    assert tuple(table.column_names) == DOC_COLUMNS
    categories_type = table.schema.field("categories").type
    assert pa.types.is_list(categories_type) and pa.types.is_string(categories_type.value_type)
    from_parquet = [{**row, "evidence": json.loads(row["evidence"])} for row in table.to_pylist()]
    assert len(jsonl) == 20
    assert from_csv == jsonl
    assert from_parquet == jsonl


def _decode_csv(row: dict[str, str]) -> dict:
    decoded: dict = {k: (v if v != "" else None) for k, v in row.items()}
    decoded["categories"] = json.loads(row["categories"])
    decoded["evidence"] = json.loads(row["evidence"])
    return decoded


def test_stream_and_stdout_get_the_same_bytes_as_a_file(mixed, tmp_path, capsysbinary):
    path = tmp_path / "out" / "corpus.jsonl"
    export_corpus(mixed, ExportOptions(), path)
    buffer = io.BytesIO()
    export_corpus(mixed, ExportOptions(), buffer)
    export_corpus(mixed, ExportOptions(), None)
    export_corpus(mixed, ExportOptions(), Path("-"))
    assert capsysbinary.readouterr().out == 2 * buffer.getvalue()
    assert buffer.getvalue() == path.read_bytes()


def test_parquet_streams_to_a_non_seekable_sink(mixed):
    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, chunk) -> int:
            self.data += bytes(chunk)
            return len(chunk)

    pipe = Pipe()
    export_corpus(mixed, ExportOptions(format="parquet"), pipe)
    assert pq.read_table(io.BytesIO(bytes(pipe.data))).num_rows == 20


def test_filters_select_by_category_source_date_and_length(mixed):
    assert {r["primary"] for r in export_rows(mixed, categories=("fake_loan",))} == {"fake_loan"}
    assert [r["source"] for r in export_rows(mixed, sources=("news-b",))] == ["news-b"]
    since = export_rows(mixed, since="2024-03-03")
    assert [r["url"].rsplit("/", 1)[1] for r in since] == ["repost.html"]
    assert all(len(r["text"]) >= 200 for r in export_rows(mixed, min_chars=200))


def test_filters_never_change_a_documents_split(mixed):
    every = {r["id"]: r["split"] for r in export_rows(mixed, dedup=False)}
    for options in ({"categories": ("fake_customer_service",)}, {"sources": ("news-b",)}):
        for row in export_rows(mixed, dedup=False, **options):
            assert row["split"] == every[row["id"]]


@pytest.mark.parametrize("options, message", [
    ({"format": "xml"}, "--format must be one of jsonl, csv, parquet"),
    ({"split_ratios": (0.8, 0.1, 0.2)}, "split ratios must be three non-negative shares"),
    ({"since": "2024-3-1"}, "--since must be YYYY-MM-DD"),
    ({"threshold": 0.0}, "--threshold must be in (0, 1]"),
])
def test_bad_options_raise_export_error(options, message):
    with pytest.raises(ExportError, match=message.replace("(", r"\(").replace("]", r"\]")):
        ExportOptions(**options)


def test_split_ratios_parse_from_percent_or_fractions():
    assert parse_split_ratios("80/10/10") == pytest.approx((0.8, 0.1, 0.1))
    assert parse_split_ratios("0.7,0.15,0.15") == pytest.approx((0.7, 0.15, 0.15))
    for bad in ("80/20", "a/b/c", "-1/1/1", "0/0/0"):
        with pytest.raises(ExportError, match="give three shares of train/dev/test"):
            parse_split_ratios(bad)


# -- near-duplicate groups -----------------------------------------------------------------

def test_repost_with_new_header_footer_and_one_changed_sentence_shares_group_and_split(mixed):
    rows = {r["url"].rsplit("/", 1)[1]: r for r in export_rows(mixed, dedup=False)}
    notice, repost = rows["notice.html"], rows["repost.html"]
    assert notice["dup_group"] == repost["dup_group"] == min(notice["id"], repost["id"])
    assert notice["split"] == repost["split"]
    singles = Counter(r["dup_group"] for r in rows.values())
    assert sorted(singles.values()) == [1] * 19 + [2]


def test_dedup_keeps_the_earliest_published_member(mixed, tmp_path):
    kept = export_rows(mixed)
    urls = [r["url"].rsplit("/", 1)[1] for r in kept]
    assert "notice.html" in urls and "repost.html" not in urls
    summary = export_corpus(mixed, ExportOptions(), tmp_path / "o" / "c.jsonl")
    assert (summary.rows, summary.duplicates_removed) == (20, 1)


def test_dedup_representative_is_chosen_among_filtered_documents(mixed):
    rows = export_rows(mixed, sources=("news-b",))
    assert [r["url"].rsplit("/", 1)[1] for r in rows] == ["repost.html"]


def test_short_template_notices_do_not_collapse_into_one_group(mixed):
    rows = export_rows(mixed, dedup=False)
    shorts = [r for r in rows if r["url"].rsplit("/", 1)[1].startswith("short")]
    assert len(shorts) == 9
    assert len({r["dup_group"] for r in shorts}) == 9


def test_exact_copy_modulo_punctuation_groups_even_when_short():
    finder = DuplicateFinder()
    finder.add("b", "警方提醒：谨防刷单诈骗。")
    finder.add("a", "警方提醒 谨防刷单诈骗!")
    finder.add("c", "警方提醒：谨防網貸詐騙。")
    assert finder.groups() == {"a": "a", "b": "a", "c": "c"}


def test_near_duplicate_estimate_tracks_true_jaccard():
    rng = random.Random(5)
    base = random_text(rng, 1500)
    finder = DuplicateFinder(DedupConfig(threshold=0.7))
    for changed in (100, 400):       # characters replaced at the end
        copy = base[:-changed] + random_text(rng, changed)
        a, b = (finder.signature(_hashed(finder, t)) for t in (base, copy))
        truth = _jaccard(base, copy)
        assert abs(finder.similarity(a, b) - truth) < 0.12, (changed, truth)


def _hashed(finder: DuplicateFinder, text: str):
    import numpy as np

    from index.dedup import _mix, letters_only, shingle_codes
    return np.sort(_mix(shingle_codes(letters_only(text), finder.config.shingle_chars)))


def _jaccard(a: str, b: str) -> float:
    sa, sb = ({t[i:i + 3] for i in range(len(t) - 2)} for t in (a, b))
    return len(sa & sb) / len(sa | sb)


def test_groups_do_not_depend_on_insertion_order():
    texts = {"x1": NOTICE, "x2": REPOST, "x3": SHORT_NOTICES[0], "x4": NOTICE + "转发"}
    groups = []
    for order in (sorted(texts), sorted(texts, reverse=True)):
        finder = DuplicateFinder()
        for key in order:
            finder.add(key, texts[key])
        groups.append(finder.groups())
    assert groups[0] == groups[1] == {"x1": "x1", "x2": "x1", "x3": "x3", "x4": "x1"}


# -- splits ----------------------------------------------------------------------------------

STRATA = {"brushing_rebate": 37, "fake_loan": 23, "fake_job": 11, None: 14, "sextortion": 3,
          "romance_scam": 1}


def test_each_split_is_within_one_document_of_its_share_per_primary(store):
    fill_random(store, STRATA)
    rows = export_rows(store)
    assert len(rows) == sum(STRATA.values())
    _assert_stratified(rows, (0.8, 0.1, 0.1))
    _assert_stratified(export_rows(store, split_ratios=(0.6, 0.2, 0.2)), (0.6, 0.2, 0.2))


def _assert_stratified(rows: list[dict], ratios: tuple[float, float, float]) -> None:
    by_stratum = Counter(r["primary"] for r in rows)
    counts = Counter((r["primary"], r["split"]) for r in rows)
    for stratum, total in by_stratum.items():
        for split, ratio in zip(("train", "dev", "test"), ratios, strict=True):
            assert abs(counts[stratum, split] - ratio * total) <= 1 + 1e-9, (stratum, split)


def test_stratified_cuts_hold_for_every_stratum_size():
    for size in range(1, 200):
        units = [SplitUnit(f"k{size}-{i}", "s", 1, None) for i in range(size)]
        counts = Counter(assign_splits(units).values())
        assert abs(counts["train"] - 0.8 * size) <= 1 + 1e-9
        assert abs(counts["dev"] - 0.1 * size) <= 1 + 1e-9
        assert abs(counts["test"] - 0.1 * size) <= 1 + 1e-9


def test_cut_points_prefer_the_hash_cut_when_it_is_already_balanced():
    assert cut_points([1] * 10, preferred=[8, 9], ratios=(0.8, 0.1, 0.1)) == [8, 9]
    assert cut_points([1] * 10, preferred=[7, 9], ratios=(0.8, 0.1, 0.1)) == [7, 9]
    assert cut_points([1] * 10, preferred=[2, 9], ratios=(0.8, 0.1, 0.1)) == [7, 9]


def test_adding_documents_keeps_other_strata_and_moves_few_to_adjacent_splits(store):
    fill_random(store, STRATA)
    before = {r["id"]: (r["primary"], r["split"]) for r in export_rows(store)}
    fill_random(store, {"brushing_rebate": 4, "fake_loan": 2}, seed=99, prefix="new")
    after = {r["id"]: r["split"] for r in export_rows(store)}
    moved = {i: (split, after[i]) for i, (_, split) in before.items() if after[i] != split}
    assert all(before[i][0] in ("brushing_rebate", "fake_loan") for i in moved)
    adjacent = {("train", "dev"), ("dev", "train"), ("dev", "test"), ("test", "dev")}
    assert set(moved.values()) <= adjacent
    assert len(moved) <= 4        # 6 new documents; each boundary shifts by at most a few


def test_adding_one_document_at_a_time_moves_nothing_mostly_and_never_more_than_two():
    units = [SplitUnit(f"d{i}", "s", 1, None) for i in range(10)]
    previous = assign_splits(units)
    moves = Counter()
    for i in range(10, 300):
        units.append(SplitUnit(f"d{i}", "s", 1, None))
        current = assign_splits(units)
        moves[sum(previous[k] != current[k] for k in previous)] += 1
        previous = current
    assert set(moves) <= {0, 1, 2}
    assert moves[0] > 0.6 * sum(moves.values())


def test_adding_ten_percent_more_documents_moves_under_one_percent():
    rng = random.Random(11)
    units = [SplitUnit(f"d{i}", rng.choice("abcde"), 1, None) for i in range(5000)]
    before = assign_splits(units)
    more = units + [SplitUnit(f"n{i}", rng.choice("abcde"), 1, None) for i in range(500)]
    after = assign_splits(more)
    moved = sum(before[u.key] != after[u.key] for u in units)
    assert moved < 0.01 * len(units)


def test_split_by_time_puts_the_newest_in_test_and_next_newest_in_dev():
    units = [SplitUnit(f"k{i:02d}", "abc"[i % 3], 1, f"2024-01-{i + 1:02d}") for i in range(30)]
    units.append(SplitUnit("undated", "a", 1, None))
    splits = assign_splits(units, SplitConfig(by="time"))
    dates = {s: sorted(u.published or "" for u in units if splits[u.key] == s)
             for s in ("train", "dev", "test")}
    assert [len(dates[s]) for s in ("train", "dev", "test")] == [25, 3, 3]
    assert dates["train"][-1] < dates["dev"][0] <= dates["dev"][-1] < dates["test"][0]
    assert splits["undated"] == "train"


def test_split_by_time_export_keeps_reposts_together(mixed):
    rows = export_rows(mixed, dedup=False, split_by="time")
    by_url = {r["url"].rsplit("/", 1)[1]: r["split"] for r in rows}
    assert by_url["notice.html"] == by_url["repost.html"]
    assert Counter(by_url.values())["train"] >= 14


# -- paragraphs -----------------------------------------------------------------------------

def test_paragraph_unit_tags_each_paragraph_and_keeps_the_documents_split(store, tagger):
    text = ("骗子以兼职刷单为名，要求受害人先垫付资金完成任务，承诺高额返利佣金。\n"
            "来源：某某公安\n"
            "另有人自称淘宝客服来电称订单异常，可办理退款理赔，诱导开启屏幕共享。")
    doc_id = add(store, "two", text, "brushing_rebate")
    doc = export_rows(store)[0]
    buffer = io.BytesIO()
    export_corpus(store, ExportOptions(unit="paragraph"), buffer, tagger=tagger)
    rows = [json.loads(line) for line in buffer.getvalue().decode().splitlines()]
    assert [tuple(r) for r in rows] == [PARAGRAPH_COLUMNS] * 2
    assert [(r["id"], r["paragraph"], r["split"]) for r in rows] == [
        (doc_id, 0, doc["split"]), (doc_id, 2, doc["split"])]
    assert [r["primary"] for r in rows] == ["brushing_rebate", "fake_customer_service"]
    for row in rows:
        for hits in row["evidence"].values():
            assert all(row["text"][h["start"]:h["end"]] == h["term"] for h in hits)


def test_paragraph_unit_drops_repeated_boilerplate_paragraphs_unless_no_dedup(store, tagger):
    tip = "警方提醒：凡是要求先垫付资金的网络兼职都是诈骗，请不要轻信。"
    rng = random.Random(3)
    for key in ("one", "two"):
        add(store, key, f"{random_text(rng, 60)}\n{tip}")
    summaries = []
    for dedup in (True, False):
        buffer = io.BytesIO()
        summaries.append(export_corpus(store, ExportOptions(unit="paragraph", dedup=dedup),
                                       buffer, tagger=tagger))
        texts = [json.loads(line)["text"] for line in buffer.getvalue().decode().splitlines()]
        assert texts.count(tip) == (1 if dedup else 2)
    assert [s.repeated_paragraphs for s in summaries] == [1, 0]


def test_empty_corpus_says_what_to_run_first(store):
    with pytest.raises(CorpusError, match="run `fraudkb crawl` or `fraudkb demo` first"):
        export_corpus(store, ExportOptions(), io.BytesIO())


def test_paragraph_unit_without_a_tagger_is_refused(store):
    with pytest.raises(ExportError, match="--unit paragraph needs the taxonomy"):
        export_corpus(store, ExportOptions(unit="paragraph"), io.BytesIO())


# -- files, atomicity and the card ----------------------------------------------------------

def test_interrupted_export_leaves_no_partial_file(mixed, tmp_path):
    out = tmp_path / "out" / "corpus.jsonl"
    out.parent.mkdir()
    out.write_text("previous export\n", encoding="utf-8")

    def interrupt(progress: ExportProgress) -> None:
        if progress.stage == "write":
            raise KeyboardInterrupt

    for fmt in ("jsonl", "parquet"):
        with pytest.raises(KeyboardInterrupt):
            export_corpus(mixed, ExportOptions(format=fmt), out, on_progress=interrupt)
    assert out.read_text(encoding="utf-8") == "previous export\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["corpus.jsonl"]
    folder = tmp_path / "split"
    with pytest.raises(KeyboardInterrupt):
        export_corpus(mixed, ExportOptions(format="parquet", split_files=True), folder,
                      on_progress=interrupt)
    assert [p for p in folder.rglob("*") if p.is_file()] == []


def test_progress_reports_both_passes(mixed):
    seen: list[ExportProgress] = []
    export_corpus(mixed, ExportOptions(), io.BytesIO(), on_progress=seen.append)
    assert seen == [ExportProgress("scan", 21, 21), ExportProgress("write", 21, 21)]


def test_card_describes_the_export_and_is_rewritten_on_re_export(mixed, tmp_path, tagger):
    out = tmp_path / "ds" / "corpus.jsonl"
    summary = export_corpus(mixed, ExportOptions(), out, tagger=tagger, taxonomy_version=3)
    card = (tmp_path / "ds" / "README.md").read_text(encoding="utf-8")
    assert summary.card == tmp_path / "ds" / "README.md"
    assert card.startswith("---\nlanguage:\n- zh\n")
    for line in ("- text-classification", "- multi-label-classification",
                 "- machine-generated", "- n<1K", '  data_files: "corpus.jsonl"', CARD_MARKER,
                 "version 3", "1 duplicates removed", "| police-a | 20 |",
                 "| brushing_rebate | 刷单返利类 |", "published 2023-", "to 2024-03-02",
                 "Jaccard >= 0.7"):
        assert line in card
    export_corpus(mixed, ExportOptions(), out, tagger=tagger, taxonomy_version=3)


def test_foreign_readme_is_never_overwritten(mixed, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "README.md").write_text("# my notes\n", encoding="utf-8")
    with pytest.raises(ExportError, match="not written by fraudkb") as caught:
        export_corpus(mixed, ExportOptions(), folder / "corpus.jsonl")
    assert caught.value.path == str(folder / "README.md")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md"]
    assert (folder / "README.md").read_text(encoding="utf-8") == "# my notes\n"


def test_split_files_are_laid_out_for_the_card(mixed, tmp_path):
    folder = tmp_path / "ds"
    summary = export_corpus(mixed, ExportOptions(split_files=True), folder)
    names = sorted(str(p.relative_to(folder)) for p in folder.iterdir())
    assert names == sorted(["README.md", *(f"{s}.jsonl" for s in summary.splits
                                           if summary.splits[s])])
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert '  - split: train\n    path: "train.jsonl"' in card
    for split, count in summary.splits.items():
        if count:
            lines = (folder / f"{split}.jsonl").read_text("utf-8").splitlines()
            assert len(lines) == count
            assert {json.loads(line)["split"] for line in lines} == {split}


def test_parquet_split_files_go_under_data(mixed, tmp_path):
    summary = export_corpus(mixed, ExportOptions(format="parquet", split_files=True),
                            tmp_path / "ds")
    first = summary.files[0].relative_to(tmp_path / "ds").as_posix()
    assert first == "data/train-00000-of-00001.parquet"


@pytest.mark.parametrize("split_files, make, message", [
    (False, "dir", "is a folder: name the file to write"),
    (True, "file", "--split-files needs a folder"),
])
def test_out_of_the_wrong_kind_is_refused(mixed, tmp_path, split_files, make, message):
    target = tmp_path / "target"
    target.mkdir() if make == "dir" else target.write_text("x", encoding="utf-8")
    with pytest.raises(ExportError, match=message):
        export_corpus(mixed, ExportOptions(split_files=split_files), target)


def test_split_files_need_a_folder_not_a_stream(mixed):
    with pytest.raises(ExportError, match="--split-files writes several files"):
        export_corpus(mixed, ExportOptions(split_files=True), io.BytesIO())


def test_card_check_accepts_a_missing_or_own_readme(tmp_path):
    check_card_writable(tmp_path)
    (tmp_path / "README.md").write_text(f"---\n---\n{CARD_MARKER}\n", encoding="utf-8")
    check_card_writable(tmp_path)
    assert [size_category(n) for n in (999, 1000, 99_999, 100_000)] == [
        "n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M"]


# -- Hugging Face datasets -------------------------------------------------------------------

@pytest.fixture
def hf_datasets(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    return pytest.importorskip("datasets")


def test_datasets_loads_the_jsonl_as_it_is(mixed, tmp_path, hf_datasets):
    path = tmp_path / "ds" / "corpus.jsonl"
    export_corpus(mixed, ExportOptions(), path)
    loaded = hf_datasets.load_dataset("json", data_files=str(path),
                                      cache_dir=str(tmp_path / "hf-cache"))
    assert loaded["train"].num_rows == 20
    assert loaded["train"].column_names == list(DOC_COLUMNS)
    first = json.loads(path.read_text("utf-8").splitlines()[0])
    loaded_first = loaded["train"][0]
    # pyarrow's JSON reader infers ISO dates as timestamps (documented in the card).
    assert loaded_first.pop("published").date().isoformat() == first.pop("published")
    assert loaded_first == first


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_datasets_picks_up_split_files_from_the_card(mixed, tmp_path, hf_datasets, fmt):
    folder = tmp_path / "ds"
    summary = export_corpus(mixed, ExportOptions(format=fmt, split_files=True), folder)
    loaded = hf_datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf-cache"))
    assert {name: loaded[name].num_rows for name in loaded} == {
        s: n for s, n in summary.splits.items() if n}
