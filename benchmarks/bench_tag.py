"""Tagging throughput (MB/s of UTF-8 input) vs a compiled `re` alternation, and cold start.

    .venv/bin/python benchmarks/bench_tag.py [--mb 4] [--seed 20251126]

Both sides run in the same process on the same generated notices (deterministic seed):
- matcher only: one automaton pass vs `re.finditer` of the alternation of the same
  normalised terms (longest first), over already-normalised text;
- end to end: Tagger.tag() (normalise + match + score + evidence) per notice vs
  normalise + `re.finditer` per notice (the baseline skips scoring, which favours it);
- end to end on written notices: the same, over the labelled texts we wrote
  (tests/data/tag_*.jsonl) joined into ~1,500-character notices. They hold ~110 term hits
  per 1,000 characters against ~63 in the generated ones, and the tagger's cost grows with
  hits while the regex's grows with characters, so this ratio is far lower;
- batched: Tagger.tag_many() over batches of --batch notices (the same Tags as tag(),
  scored with numpy), generated and written, against the same regex baseline. The three
  sides (tag(), tag_many(), regex) of each input run alternately.
Cold start: a fresh interpreter that imports the tagger, loads the taxonomy and tags once
(the work `fraudkb tag` does before printing); `fraudkb tag` must start in < 0.5 s.

Throughputs are CPU time (time.process_time), best of --repeat runs, the two sides of each
ratio run alternately: on a shared machine wall time swung the end-to-end ratio between 7x
and 10x from one run to the next, CPU time by a few percent. --clock wall measures wall time.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crawler.tag import Tagger, build_matcher  # noqa: E402
from crawler.taxonomy import Taxonomy, load_taxonomy  # noqa: E402
from crawler.textnorm import normalize_with_origin  # noqa: E402

NOTICE_CHARS = 1500         # a typical police notice body
TERM_RATE = 0.03            # share of words that are taxonomy terms (a dense anti-fraud text)
FILLER = (  # everyday notice words, a few traditional ones so t2s runs too
    "我们", "今天", "通过", "市民", "发现", "工作", "时间", "已经", "对方", "自己",
    "一个", "没有", "这个", "情况", "要求", "进行", "表示", "相关", "部门", "提醒",
    "广大", "群众", "注意", "安全", "手机", "电话", "信息", "朋友", "家人", "公司",
    "学校", "学生", "老人", "社区", "民警", "案件", "调查", "发生", "日前", "近期",
    "元", "万元", "接到", "称", "后", "随即", "但是", "因为", "所以", "如果",
    "一定", "不要", "可能", "需要", "我们", "他们", "这些", "那些", "已", "被",
    "把", "向", "从", "在", "和", "与", "及", "等", "的", "了",
    "著名", "乾燥", "發現", "時間", "聯繫", "報警", "銀行", "帳戶", "網絡", "視頻",
)
PUNCTUATION = "，，，。。、；：！？“”（）"
CLEAN_SNIPPET = "提醒广大市民：接到陌生来电要提高警惕，不轻信，不转账。"


def generate_notices(taxonomy: Taxonomy, total_mb: float, seed: int) -> list[str]:
    """Deterministic pseudo-notices: filler words, full-width punctuation, some terms."""
    rng = random.Random(seed)
    terms = sorted({t.text for c in taxonomy.categories for t in c.keywords})
    notices: list[str] = []
    size = 0
    while size < total_mb * 1_000_000:
        pieces: list[str] = []
        length = 0
        while length < NOTICE_CHARS:
            word = rng.choice(terms) if rng.random() < TERM_RATE else rng.choice(FILLER)
            pieces.append(word)
            length += len(word)
            if rng.random() < 0.12:
                pieces.append(rng.choice(PUNCTUATION))
                length += 1
        notice = "".join(pieces)
        notices.append(notice)
        size += len(notice.encode())
    return notices


def written_notices(total_mb: float, seed: int) -> list[str]:
    """The labelled texts we wrote, shuffled and joined into ~NOTICE_CHARS notices."""
    texts = [json.loads(line)["text"] for name in ("tag_dev", "tag_holdout", "tag_blind2")
             for line in (ROOT / "tests" / "data" / f"{name}.jsonl").read_text(
                 encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    notices: list[str] = []
    size = 0
    while size < total_mb * 1_000_000:
        rng.shuffle(texts)
        current: list[str] = []
        length = 0
        for text in texts:
            current.append(text)
            length += len(text)
            if length >= NOTICE_CHARS:
                notices.append("\n".join(current))
                size += len(notices[-1].encode())
                current, length = [], 0
    return notices


def regex_for(taxonomy: Taxonomy) -> re.Pattern[str]:
    """The baseline: one alternation of every normalised term, longest first."""
    keys = {t.key for c in taxonomy.categories
            for t in (*c.keywords, *c.negatives, *c.excludes,
                      *(t for combo in c.combos for g in combo.groups for t in g))}
    return re.compile("|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True)))


def throughputs(works: tuple[Callable[[], object], ...], megabytes: float, repeat: int,
                clock: Callable[[], float]) -> list[float]:
    """Best-of-`repeat` MB/s of each of `works` over `megabytes` of input, run alternately
    so that a busy spell of the machine hits every side alike."""
    best = [math.inf] * len(works)
    for _ in range(repeat):
        for index, work in enumerate(works):
            best[index] = min(best[index], _timed(work, clock))
    return [megabytes / seconds for seconds in best]


def _timed(work: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    work()
    return clock() - start


def end_to_end(tagger: Tagger, pattern: re.Pattern[str], notices: list[str],
               args: argparse.Namespace, clock: Callable[[], float]) -> list[float]:
    """MB/s of tag() per notice, tag_many() per batch and normalise + regex per notice."""
    megabytes = sum(len(n.encode()) for n in notices) / 1_000_000
    batches = [notices[i:i + args.batch] for i in range(0, len(notices), args.batch)]
    tagger.tag_many(batches[0])     # builds the batch tables once, as a long run would
    return throughputs(
        (lambda: [tagger.tag(n) for n in notices],
         lambda: [tagger.tag_many(batch) for batch in batches],
         lambda: [list(pattern.finditer(normalize_with_origin(n)[0])) for n in notices]),
        megabytes, args.repeat, clock)


def per_notice_us(notice_mb: float, single: float, batch: float, regex: float
                  ) -> dict[str, int]:
    """Microseconds per notice of each side, from MB/s and the mean notice size in MB."""
    return {side: round(notice_mb / mb_per_s * 1e6) for side, mb_per_s in
            (("tag", single), ("tag_many", batch), ("regex", regex))}


def cold_start_seconds(runs: int = 5) -> tuple[float, bool]:
    """Median wall time of a fresh `tag once` interpreter; and whether heavy deps stayed out."""
    code = ("import sys\n"
            "from crawler.tag import build_matcher\n"
            "from crawler.taxonomy import default_categories_path, load_taxonomy\n"
            "tags = build_matcher(load_taxonomy(default_categories_path())).tag("
            f"{CLEAN_SNIPPET + '兼职刷单要求垫付'!r})\n"
            "heavy = {'jieba', 'trafilatura', 'whoosh', 'httpx'} & set(sys.modules)\n"
            "print('heavy' if heavy else 'light', tags.primary)\n")
    times, light = [], True
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True,
                                capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        light = light and result.stdout.startswith("light")
    return statistics.median(times), light


def main() -> None:
    """Run the benchmark; print the throughputs, ratios and cold start (and --out JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=4.0, help="input size in MB (UTF-8)")
    parser.add_argument("--seed", type=int, default=20251126, help="generator seed")
    parser.add_argument("--repeat", type=int, default=5, help="runs per side; best counts")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                        help="time.process_time (default) or time.perf_counter")
    parser.add_argument("--batch", type=int, default=64, help="notices per tag_many() call")
    parser.add_argument("--out", type=Path, default=None, help="also write a JSON report here")
    args = parser.parse_args()
    report = measure(args)
    print_report(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        rounded = {key: round(value, 1) if key.endswith("mb_per_s") else value
                   for key, value in report.items()}
        args.out.write_text(json.dumps(rounded, indent=1), encoding="utf-8")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every number of the report (the --out JSON rounds MB/s to 0.1)."""
    taxonomy = load_taxonomy(ROOT / "seeds" / "categories.toml")
    tagger: Tagger = build_matcher(taxonomy)
    pattern = regex_for(taxonomy)
    notices = generate_notices(taxonomy, args.mb, args.seed)
    megabytes = sum(len(n.encode()) for n in notices) / 1_000_000
    normalised = [normalize_with_origin(n)[0] for n in notices]
    find = tagger._find  # the bench compares the matcher itself, so it may look inside

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    match_ac, match_re = throughputs(
        (lambda: [find(n) for n in normalised],
         lambda: [list(pattern.finditer(n)) for n in normalised]), megabytes, args.repeat, clock)
    full_ac, batch_ac, full_re = end_to_end(tagger, pattern, notices, args, clock)
    written = written_notices(args.mb / 2, args.seed)
    written_mb = sum(len(n.encode()) for n in written) / 1_000_000
    written_ac, written_batch, written_re = end_to_end(tagger, pattern, written, args, clock)
    cold, light = cold_start_seconds()
    return {"megabytes": round(megabytes, 2), "clock": args.clock, "repeat": args.repeat,
            "notices": len(notices), "terms": len(pattern.pattern.split("|")),
            "matcher_mb_per_s": match_ac, "matcher_regex_mb_per_s": match_re,
            "tag_mb_per_s": full_ac, "regex_mb_per_s": full_re,
            "written_megabytes": round(written_mb, 2), "written_tag_mb_per_s": written_ac,
            "written_regex_mb_per_s": written_re, "batch_size": args.batch,
            "tag_many_mb_per_s": batch_ac, "written_tag_many_mb_per_s": written_batch,
            "us_per_notice": {
                "generated": per_notice_us(megabytes / len(notices), full_ac, batch_ac, full_re),
                "written": per_notice_us(written_mb / len(written), written_ac, written_batch,
                                         written_re)},
            "cold_start_s": round(cold, 3), "cold_start_light": light,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def print_report(report: dict[str, Any]) -> None:
    """The report as aligned lines: MB/s and ratio of each side, µs per notice."""
    print(f"input: {report['notices']} notices, {report['megabytes']:.2f} MB, "
          f"{report['terms']} terms, matcher ahocorasick-rs, "
          f"{report['clock']} time, best of {report['repeat']}")
    rows = (("matcher only   automaton", "matcher_mb_per_s", "matcher_regex_mb_per_s", ""),
            ("end to end     tag()    ", "tag_mb_per_s", "regex_mb_per_s", ""),
            ("               tag_many ", "tag_many_mb_per_s", "regex_mb_per_s",
             f"   (batches of {report['batch_size']})"),
            ("written notices tag()    ", "written_tag_mb_per_s", "written_regex_mb_per_s",
             f"   ({report['written_megabytes']:.2f} MB)"),
            ("               tag_many ", "written_tag_many_mb_per_s", "written_regex_mb_per_s",
             ""))
    for label, ours, regex, note in rows:
        print(f"{label} {report[ours]:8.1f} MB/s   re {report[regex]:6.1f} MB/s   "
              f"ratio {report[ours] / report[regex]:5.1f}x{note}")
    for name, sides in report["us_per_notice"].items():
        print(f"µs per {name} notice: " + ", ".join(f"{side} {us}" for side, us in sides.items()))
    print(f"cold start (import + load taxonomy + tag once): {report['cold_start_s']:.3f} s "
          f"({'no' if report['cold_start_light'] else 'HEAVY'} "
          "jieba/trafilatura/whoosh/httpx imports)")


if __name__ == "__main__":
    main()
