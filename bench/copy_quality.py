"""Copy attention and coverage measured (issue 17): the demo recipe with and without them on the bundled
es-en test set, and the copy-heavy task of bench/copy_task.py (dev BLEU against steps).

    python bench/copy_quality.py [--demo DIR ...] [--edit DIR ...] [--out NAME]    # `make bench-copy`

For each demo-recipe model, beam 5 and greedy on the 1,000 test verses: BLEU, chrF, the share of proper
names (capitalised words not at a sentence start that appear in both the source and the reference) that
the output writes too, the share of the reference's numbers (digits and English number words, counted
with their multiplicity) that the output has, and the share of outputs that repeat a 4-gram of words.
For each copy-task model, its dev BLEU at every validation, against copying the source unchanged, and the
first step at which it passes that baseline. Writes bench/results-copy.{json,md} (`--out NAME`:
bench/NAME.{json,md}, so that the copy-task runs alone do not replace the demo's figures).
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import time
from collections import Counter
from pathlib import Path

import sacrebleu

import seqkit
from seqkit.training import log as training_log

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpora" / "bible-es-en"
NUMBER_WORDS = set(
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million first second third fourth fifth sixth seventh eighth ninth tenth".split()
)
WORD = re.compile(r"[\w’'-]+")


def _read(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def names(line: str) -> set[str]:
    """Capitalised words that do not start a sentence (after . ! ? : or quotes opening one)."""
    found, starts = set(), True
    for token in line.split():
        word = WORD.search(token)
        if (
            word
            and word.group()[0].isupper()
            and not starts
            and not token.lstrip("“‘\"'¿¡(").startswith(("“", "‘"))
        ):
            found.add(word.group())
        starts = token.endswith((".", "!", "?", ":", ".”", "?”", "!”")) or token in ("“", "‘")
    return found


def numbers(line: str) -> Counter:
    words = [w.lower() for w in WORD.findall(line.replace("-", " "))]
    return Counter(w for w in words if w.isdigit() or w in NUMBER_WORDS)


def repeats_a_4gram(text: str) -> bool:
    words = text.split()
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(set(grams)) < len(grams)


def demo_scores(model_dir: str, sources: list[str], references: list[str]) -> list[dict]:
    model = seqkit.load(model_dir)
    rows = []
    for beam in (5, 1):
        start = time.perf_counter()
        outputs = [r.text for r in model.translate(sources, beam_size=beam)]
        seconds = time.perf_counter() - start
        shared = found = 0
        for src, ref, out in zip(sources, references, outputs, strict=True):
            both = names(src) & names(ref)
            shared += len(both)
            found += len(both & set(WORD.findall(out)))
        wanted = written = 0
        for ref, out in zip(references, outputs, strict=True):
            ref_numbers, out_numbers = numbers(ref), numbers(out)
            wanted += sum(ref_numbers.values())
            written += sum((ref_numbers & out_numbers).values())
        rows.append(
            {
                "model": model_dir,
                "copy": model.config.model.copy,
                "coverage": model.config.model.coverage,
                "beam": beam,
                "bleu": round(sacrebleu.corpus_bleu(outputs, [references]).score, 2),
                "chrf": round(sacrebleu.corpus_chrf(outputs, [references]).score, 2),
                "names_pct": round(100 * found / max(1, shared), 1),
                "names": shared,
                "numbers_pct": round(100 * written / max(1, wanted), 1),
                "numbers": wanted,
                "repeating_4gram_pct": round(100 * sum(map(repeats_a_4gram, outputs)) / len(outputs), 1),
                "sentences_per_s": round(len(outputs) / seconds, 1),
            }
        )
        print(rows[-1], flush=True)
    return rows


def edit_curves(model_dir: str) -> dict:
    records = [r for r in training_log.read(Path(model_dir)) if r.kind == "valid"]
    model = seqkit.load(model_dir)
    sentences = records[-1].sentences if records else None
    data = model.config.data  # the task's own dev set (bench/work/copy-task or copy-task-doubled)
    sources, targets = _read(Path(f"{data.dev}.{data.src_lang}")), _read(Path(f"{data.dev}.{data.tgt_lang}"))
    if sentences:
        sources, targets = sources[:sentences], targets[:sentences]
    baseline = sacrebleu.corpus_bleu(sources, [targets]).score
    curve = [{"step": r.step, "dev_bleu": round(r.scores["bleu"], 2)} for r in records]
    passed = next((point["step"] for point in curve if point["dev_bleu"] > baseline), None)
    return {
        "model": model_dir,
        "task": Path(data.dev).parent.name,
        "copy": model.config.model.copy,
        "coverage": model.config.model.coverage,
        "attention": model.config.model.attention,
        "copying_baseline_bleu": round(baseline, 2),
        "dev_sentences": sentences,
        "curve": curve,
        "passes_baseline_at_step": passed,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--demo",
        nargs="*",
        default=[
            "runs/demo-plain",  # the copy bench's plain model (Makefile bench-copy)
            "runs/demo-copy",
            "runs/demo-copy-coverage",
            "runs/demo-cov01",
            "runs/demo-copy-then-copy",
            "runs/demo-copy-then-coverage",
        ],
    )
    parser.add_argument(
        "--edit",
        nargs="*",
        default=[
            "runs/edit-plain",
            "runs/edit-copy",
            "runs/edit-copy-start",
            "runs/doubled-plain",
            "runs/doubled-copy-start",
            "runs/doubled-copy-clip5",
            "runs/doubled-copy-random",
            "runs/doubled-copy-coverage",
            "runs/doubled-luong-plain",
            "runs/doubled-luong-copy-start",
            "runs/doubled-luong-copy-random",
            "runs/doubled-luong-copy-cov",
            "runs/doubled-luong-copy-cov-random",
        ],
    )
    parser.add_argument("--out", default="results-copy", help="bench/OUT.{json,md}")
    args = parser.parse_args()
    sources, references = _read(CORPUS / "test.es.gz"), _read(CORPUS / "test.en.gz")
    demo = [
        row
        for model_dir in args.demo
        if Path(model_dir).exists()
        for row in demo_scores(model_dir, sources, references)
    ]
    edit = [edit_curves(model_dir) for model_dir in args.edit if Path(model_dir).exists()]
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "demo": demo, "edit": edit}
    out = REPO / "bench" / args.out
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    demo_lines = [
        "The demo recipe (8 minutes of training), 1,000 test verses:",
        "",
        "| model | copy | coverage | beam | BLEU | chrF | names % | numbers % | outputs repeating a 4-gram % | sent/s |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {r['model']} | {r['copy']} | {r['coverage']} | {r['beam']} | {r['bleu']:.2f} | {r['chrf']:.2f} "
            f"| {r['names_pct']:.1f} (of {r['names']}) | {r['numbers_pct']:.1f} (of {r['numbers']}) "
            f"| {r['repeating_4gram_pct']:.1f} | {r['sentences_per_s']:.1f} |"
            for r in demo
        ),
        "",
    ]
    lines = [
        f"# Copy attention and coverage ({results['date']})",
        "",
        *(demo_lines if demo else []),
        "The copy-heavy task (bench/copy_task.py: undo word-level edits), dev BLEU (greedy) at each validation:",
        "",
    ]
    for run in edit:
        points = ", ".join(f"{p['step']}: {p['dev_bleu']:.1f}" for p in run["curve"])
        lines.append(
            f"- {run['model']} ({run['attention']}, copy {run['copy']}, coverage {run['coverage']}, {run['task']}): copying the source {run['copying_baseline_bleu']:.2f}; "
            f"passes it at step {run['passes_baseline_at_step']}; {points}"
        )
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
