"""categories.toml: the shipped taxonomy is complete, and malformed files fail with a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crawler.errors import ConfigError
from crawler.taxonomy import (
    KNOWN_CATEGORY_IDS,
    Scoring,
    default_categories_path,
    load_taxonomy,
    parse_taxonomy,
)

REPO_CATEGORIES = Path(__file__).resolve().parents[1] / "seeds" / "categories.toml"

SPEC_NAMES = {
    "brushing_rebate": "刷单返利类",
    "fake_investment": "虚假投资理财类",
    "fake_loan": "虚假网络贷款类",
    "fake_customer_service": "冒充电商物流客服类",
    "impersonate_authority": "冒充公检法及政府机关类",
    "fake_credit": "虚假征信类",
    "game_trading": "网络游戏产品虚假交易类",
    "romance_scam": "网络婚恋交友类（杀猪盘）",
    "impersonate_acquaintance": "冒充领导熟人类",
    "fake_shopping": "虚假购物服务类",
    "online_gambling": "网络赌博类",
    "sextortion": "裸聊敲诈类",
    "money_mule": "帮信/两卡/引流类",
    "fake_job": "虚假招聘/入职缴费类",
}

VALID = """\
version = 1

[[category]]
id = "brushing_rebate"
name = "刷单返利类"
description = "test"

[category.keywords]
"刷单" = 3.5
"垫付" = 1.0

[[category.combo]]
all = [["刷单", "做任务"], "垫付"]
weight = 2.0

[[category]]
id = "fake_loan"
name = "虚假网络贷款类"
description = "test"
exclude = ["贷款市场报价利率"]

[category.keywords]
"解冻金" = 3.0

[category.negative]
"央行" = 1.0
"""


def _lines_replaced(old: str, new: str) -> str:
    assert VALID.count(old) == 1, old
    return VALID.replace(old, new)


def test_shipped_taxonomy_has_the_fourteen_spec_categories_with_their_names():
    taxonomy = load_taxonomy(REPO_CATEGORIES)
    assert {c.id: c.name for c in taxonomy.categories} == SPEC_NAMES
    assert set(SPEC_NAMES) == set(KNOWN_CATEGORY_IDS)
    assert taxonomy.version >= 1


def test_every_shipped_category_has_a_description_and_at_least_twelve_weighted_terms():
    for category in load_taxonomy(REPO_CATEGORIES).categories:
        assert category.description
        assert len(category.keywords) >= 12, category.id
        assert all(0 < term.weight <= 10 for term in category.keywords)
        assert category.threshold > 0


def test_shipped_taxonomy_uses_combos_negatives_and_excludes():
    categories = load_taxonomy(REPO_CATEGORIES).categories
    assert sum(len(c.combos) for c in categories) >= 10
    assert any(c.negatives for c in categories)
    assert any(c.excludes for c in categories)


def test_valid_file_is_parsed_into_normalised_terms_and_default_scoring():
    taxonomy = parse_taxonomy(VALID)
    brushing, loan = taxonomy.categories
    assert [(t.text, t.weight) for t in brushing.keywords] == [("刷单", 3.5), ("垫付", 1.0)]
    assert [[t.key for t in g] for g in brushing.combos[0].groups] == [["刷单", "做任务"],
                                                                       ["垫付"]]
    assert brushing.combos[0].window == 0
    assert loan.excludes[0].key == "贷款市场报价利率"
    assert loan.negatives[0].weight == 1.0
    assert taxonomy.scoring == Scoring()
    assert brushing.threshold == Scoring().default_threshold


def test_traditional_and_full_width_terms_in_the_file_are_normalised_for_matching():
    taxonomy = parse_taxonomy(_lines_replaced('"刷单" = 3.5', '"刷單ＡＰＰ" = 3.5'))
    term = taxonomy.categories[0].keywords[0]
    assert (term.text, term.key) == ("刷單ＡＰＰ", "刷单app")


@pytest.mark.parametrize(
    ("old", "new", "line", "problem"),
    [
        ('"刷单" = 3.5', '"刷单" = 3.5 3', 9, "TOML syntax error"),
        ('"垫付" = 1.0', '"垫付" = "1"', 10, "must be a number"),
        ('"垫付" = 1.0', '"垫付" = -1.0', 10, "[category.negative]"),
        ('"垫付" = 1.0', '"垫付" = 0', 10, "0 < value <= 10"),
        ('"垫付" = 1.0', '"垫付" = 12.5', 10, "0 < value <= 10"),
        ('"垫付" = 1.0', '"垫付" = true', 10, "must be a number"),
        ('"垫付" = 1.0', '"垫付" = nan', 10, "0 < value <= 10"),
        ('description = "test"\n\n[category.keywords]\n"刷单"',
         'description = "test"\ncolour = "red"\n\n[category.keywords]\n"刷单"', 7,
         "unknown key 'colour'"),
        ('id = "fake_loan"', 'id = "brushing_rebate"', 17, "duplicate category id"),
        ('id = "fake_loan"', 'id = "phishing"', 17, "unknown category id 'phishing'"),
        ('name = "虚假网络贷款类"\n', "", 16, "missing the required field `name`"),
        ("weight = 2.0", "weight = 2.0\nwindow = -5", 15, "`window` must be"),
        ('all = [["刷单", "做任务"], "垫付"]', 'all = [["刷单", "做任务"]]', 13,
         "at least two groups"),
        ('all = [["刷单", "做任务"], "垫付"]', 'all = [["刷单", "做任务"], []]', 13, "empty group"),
        ('"垫付" = 1.0', '"垫付" = 1.0\n"刷單" = 2.0', 11, "same term after normalisation"),
        ('"解冻金" = 3.0', '" " = 3.0', 23, "empty term"),
        ("version = 1", 'version = "1"', 1, "`version` must be a positive integer"),
    ],
)
def test_malformed_file_raises_config_error_naming_file_line_and_problem(
        tmp_path: Path, old: str, new: str, line: int, problem: str):
    path = tmp_path / "categories.toml"
    path.write_text(_lines_replaced(old, new), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    error = caught.value
    assert error.path == str(path)
    assert problem in error.problem
    assert error.line == line
    assert str(error).startswith(f"{path}:{line}: ")


def test_file_without_categories_is_refused(tmp_path: Path):
    path = tmp_path / "categories.toml"
    path.write_text("version = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no \\[\\[category\\]\\] tables"):
        load_taxonomy(path)


def test_unknown_scoring_key_is_refused_with_its_line(tmp_path: Path):
    path = tmp_path / "categories.toml"
    path.write_text(VALID.replace("version = 1\n", "version = 1\n[scoring]\nboost = 2\n"),
                    encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_taxonomy(path)
    assert caught.value.line == 3
    assert "unknown key 'boost' in [scoring]" in caught.value.problem


def test_scoring_table_overrides_defaults():
    taxonomy = parse_taxonomy(VALID.replace(
        "version = 1\n", "version = 1\n[scoring]\ntitle_bonus = 2\nlength_reference = 500\n"))
    assert taxonomy.scoring.title_bonus == 2.0
    assert taxonomy.scoring.length_reference == 500
    assert taxonomy.scoring.repeat_gain == Scoring().repeat_gain


def test_missing_file_is_a_config_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_taxonomy(tmp_path / "nope.toml")


def test_default_path_prefers_the_environment_variable(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("FRAUDKB_CATEGORIES", str(tmp_path / "mine.toml"))
    assert default_categories_path() == tmp_path / "mine.toml"


def test_default_path_uses_seeds_in_the_working_directory(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("FRAUDKB_CATEGORIES", raising=False)
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds" / "categories.toml").write_text(VALID, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert default_categories_path() == Path("seeds") / "categories.toml"


def test_default_path_falls_back_to_the_repo_copy(monkeypatch, tmp_path: Path):
    monkeypatch.delenv("FRAUDKB_CATEGORIES", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_categories_path() == REPO_CATEGORIES
