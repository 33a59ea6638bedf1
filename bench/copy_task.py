"""Copy-heavy tasks built from the bundled corpus: undo random word-level edits of the English side.

Each source is an English verse with some of its words edited; the target is the verse as it was.
Copying the source unchanged is a strong baseline (its BLEU is printed): most of every output is its
input, which a plain attentional RNN must learn to write through its output layer. Two sets of edits:

- mixed (the default): a word dropped, two neighbours swapped, a word doubled, or a word replaced by a
  random word of the corpus. A dropped or replaced word is not in the source: part of what is left to
  learn once the copying is learned is guessing it.
- doubled: one word in four written twice. The source determines every edit (drop the second of two equal
  neighbours), so what the task measures is the copying itself.

    python bench/copy_task.py OUT_DIR [--edits doubled]   # OUT_DIR/{train,dev,test}.{src,tgt}; the baseline
"""

from __future__ import annotations

import argparse
import gzip
import random
from pathlib import Path

import sacrebleu

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "bible-es-en"
EDIT_RATE = 0.125
DOUBLED_RATE = 0.25  # doubled: one word in four, so that copying the source leaves room above it
SEED = 1


def _read(name: str) -> list[str]:
    with gzip.open(CORPUS / name, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def edit(
    words: list[str], vocabulary: list[str], rng: random.Random, kinds: int = 4, rate: float = EDIT_RATE
) -> list[str]:
    """`words` with about `rate` of them edited, one of four edits each, or (kinds = 1) each doubled."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if rng.random() >= rate:
            out.append(word)
        else:
            kind = rng.randrange(4)
            if kinds == 1:
                kind = 2
            if kind == 0:  # dropped
                pass
            elif kind == 1 and i + 1 < len(words):  # swapped with the next
                out += [words[i + 1], word]
                i += 1
            elif kind == 2:  # doubled
                out += [word, word]
            else:  # replaced
                out.append(rng.choice(vocabulary))
        i += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--edits", choices=["mixed", "doubled"], default="mixed")
    args = parser.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    for split in ("train", "dev", "test"):
        targets = _read(f"{split}.en.gz")
        vocabulary = sorted({w for line in targets for w in line.split()})
        kinds, rate = (4, EDIT_RATE) if args.edits == "mixed" else (1, DOUBLED_RATE)
        sources = [" ".join(edit(line.split(), vocabulary, rng, kinds, rate)) for line in targets]
        (out / f"{split}.src").write_text("".join(s + "\n" for s in sources), encoding="utf-8")
        (out / f"{split}.tgt").write_text("".join(t + "\n" for t in targets), encoding="utf-8")
        if split != "train":
            baseline = sacrebleu.corpus_bleu(sources, [targets]).score
            print(f"{split}: copying the source, BLEU {baseline:.2f}")


if __name__ == "__main__":
    main()
