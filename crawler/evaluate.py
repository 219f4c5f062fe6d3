"""Score the tagger against labelled records: per-category P/R/F1, micro/macro F1, primary.

Definitions (what `fraudkb eval-tags` prints):
- per category: a record counts as a true positive when the category is both gold and
  predicted; support = number of records with the category in gold.
- micro F1 pools TP/FP/FN over all categories; macro F1 averages per-category F1 over the
  categories that occur in gold or in predictions (a category absent from both is skipped,
  so a small eval file is not rewarded or punished for types it does not contain).
- primary accuracy: the predicted primary equals the FIRST gold category; a record with no
  gold category is correct exactly when nothing is predicted (primary is None).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from crawler.errors import ConfigError
from crawler.records import Tags

EvalRecord = tuple[str, tuple[str, ...]]


class SupportsTag(Protocol):
    """Anything with Tagger.tag's signature (a Tagger, or a stub in tests)."""

    def tag(self, text: str, title: str = "") -> Tags: ...


@dataclass(frozen=True, slots=True)
class CategoryScore:
    """Precision, recall, F1 and support of one category."""

    category: str
    precision: float
    recall: float
    f1: float
    support: int
    true_positives: int
    false_positives: int
    false_negatives: int


@dataclass(frozen=True, slots=True)
class EvalReport:
    """The result of evaluate(); format_report() renders it."""

    per_category: tuple[CategoryScore, ...]
    micro_f1: float
    macro_f1: float
    primary_accuracy: float
    records: int


def evaluate(records: Iterable[EvalRecord], tagger: SupportsTag) -> EvalReport:
    """Tag every record's text and compare with its gold categories (primary first)."""
    counts: dict[str, list[int]] = {}           # category -> [tp, fp, fn]
    primary_hits = total = 0
    for text, gold in records:
        tags = tagger.tag(text)
        total += 1
        primary_hits += _is_primary_correct(tags, gold)
        predicted, expected = set(tags.categories), set(gold)
        for category in predicted | expected:
            row = counts.setdefault(category, [0, 0, 0])
            row[0] += category in predicted and category in expected
            row[1] += category in predicted and category not in expected
            row[2] += category in expected and category not in predicted
    per_category = tuple(_category_score(c, *counts[c]) for c in sorted(counts))
    return EvalReport(
        per_category=per_category,
        micro_f1=_micro_f1(per_category),
        macro_f1=_mean([s.f1 for s in per_category]),
        primary_accuracy=primary_hits / total if total else 0.0,
        records=total,
    )


def format_report(report: EvalReport) -> str:
    """A plain aligned table plus the summary lines."""
    width = max([len("category"), *(len(s.category) for s in report.per_category)])
    lines = [f"{'category':<{width}}  precision  recall     f1  support"]
    for s in report.per_category:
        lines.append(f"{s.category:<{width}}  {s.precision:9.3f}  {s.recall:6.3f}  "
                     f"{s.f1:5.3f}  {s.support:7d}")
    lines += ["", f"records           {report.records}",
              f"micro F1          {report.micro_f1:.3f}",
              f"macro F1          {report.macro_f1:.3f}",
              f"primary accuracy  {report.primary_accuracy:.3f}"]
    return "\n".join(lines)


def load_eval_records(path: str | Path) -> list[EvalRecord]:
    """Read jsonl `{"text": str, "categories": [ids, primary first]}`; ConfigError on bad lines."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, f"cannot read the file: {exc}") from exc
    return [_parse_line(line, path, number)
            for number, line in enumerate(lines, 1) if line.strip()]


def _parse_line(line: str, path: str | Path, number: int) -> EvalRecord:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ConfigError(path, f"not valid JSON: {exc.msg}", number) from exc
    if not isinstance(data, dict):
        raise ConfigError(path, "each line must be a JSON object with text and categories",
                          number)
    text, categories = data.get("text"), data.get("categories")
    if not isinstance(text, str):
        raise ConfigError(path, "`text` must be a string", number)
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise ConfigError(path, "`categories` must be a list of category ids", number)
    return text, tuple(categories)


def _is_primary_correct(tags: Tags, gold: tuple[str, ...]) -> bool:
    return tags.primary == (gold[0] if gold else None)


def _category_score(category: str, tp: int, fp: int, fn: int) -> CategoryScore:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return CategoryScore(category, precision, recall, _f1(precision, recall), tp + fn,
                         tp, fp, fn)


def _micro_f1(scores: tuple[CategoryScore, ...]) -> float:
    tp = sum(s.true_positives for s in scores)
    fp = sum(s.false_positives for s in scores)
    fn = sum(s.false_negatives for s in scores)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return _f1(precision, recall)


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0
