"""What the rules against loops do on a model: BLEU, chrF, the share of outputs that repeat a 4-gram,
and sentences/s, greedy and beam 5, with each rule alone (one process, one run each).

    python bench/loops.py MODEL_DIR [--lines N]    # `make bench-loops`; writes bench/results-loops.*
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import sacrebleu

import seqkit

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpora" / "bible-es-en"
RULES = {
    "none": {},
    "no_repeat_ngram 4": {"no_repeat_ngram": 4},
    "no_repeat_ngram 3": {"no_repeat_ngram": 3},
    "repetition_penalty 1.2": {"repetition_penalty": 1.2},
    "coverage_penalty 0.2": {"coverage_penalty": 0.2},
}


def repeats_a_4gram(text: str) -> bool:
    words = text.split()
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(set(grams)) < len(grams)


def read(path: Path, lines: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f][:lines]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("--lines", type=int, default=1000)
    args = parser.parse_args()
    sources, references = read(CORPUS / "test.es.gz", args.lines), read(CORPUS / "test.en.gz", args.lines)
    model = seqkit.load(args.model_dir)
    rows = []
    for beam in (1, 5):
        for name, rule in RULES.items():
            if beam == 1 and "coverage_penalty" in rule:
                continue  # (it re-ranks finished beam hypotheses: greedy search has one)
            start = time.perf_counter()
            outputs = [r.text for r in model.translate(sources, beam_size=beam, **rule)]
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "beam": beam,
                    "rule": name,
                    "bleu": round(sacrebleu.corpus_bleu(outputs, [references]).score, 2),
                    "chrf": round(sacrebleu.corpus_chrf(outputs, [references]).score, 2),
                    "repeating_4gram_pct": round(100 * sum(map(repeats_a_4gram, outputs)) / len(outputs), 1),
                    "sentences_per_s": round(len(outputs) / seconds, 1),
                }
            )
            print(rows[-1], flush=True)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "model": args.model_dir,
        "lines": len(sources),
        # the references themselves repeat some 4-grams ("and it was so"): the share to compare with
        "references_repeating_4gram_pct": round(
            100 * sum(map(repeats_a_4gram, references)) / len(references), 1
        ),
        "rows": rows,
    }
    out = REPO / "bench" / "results-loops"
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    table = [
        f"# Rules against loops ({results['date']}, {args.model_dir}, {len(sources)} test verses)",
        "",
        f"The references repeat a 4-gram of words in {results['references_repeating_4gram_pct']}% of verses.",
        "",
        "| beam | rule | BLEU | chrF | outputs repeating a 4-gram % | sent/s |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {r['beam']} | {r['rule']} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['repeating_4gram_pct']:.1f} "
            f"| {r['sentences_per_s']:.1f} |"
            for r in rows
        ),
    ]
    out.with_suffix(".md").write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
