"""A copy-heavy task built from the bundled corpus: undo random word-level edits of the English side.

Each source is an English verse with about one word in eight edited (a word dropped, two neighbours
swapped, a word doubled, or a word replaced by a random word of the corpus); the target is the verse as
it was. Copying the source unchanged is a strong baseline (its BLEU is printed): most of every output is
its input, which a plain attentional RNN must learn to write through its output layer.

    python bench/copy_task.py OUT_DIR      # writes OUT_DIR/{train,dev,test}.{src,tgt}; prints the baseline
"""

from __future__ import annotations

import gzip
import random
import sys
from pathlib import Path

import sacrebleu

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "bible-es-en"
EDIT_RATE = 0.125
SEED = 1


def _read(name: str) -> list[str]:
    with gzip.open(CORPUS / name, "rt", encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def edit(words: list[str], vocabulary: list[str], rng: random.Random) -> list[str]:
    """`words` with about EDIT_RATE of them edited, one of four edits each."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        if rng.random() >= EDIT_RATE:
            out.append(word)
        else:
            kind = rng.randrange(4)
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
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    for split in ("train", "dev", "test"):
        targets = _read(f"{split}.en.gz")
        vocabulary = sorted({w for line in targets for w in line.split()})
        sources = [" ".join(edit(line.split(), vocabulary, rng)) for line in targets]
        (out / f"{split}.src").write_text("".join(s + "\n" for s in sources), encoding="utf-8")
        (out / f"{split}.tgt").write_text("".join(t + "\n" for t in targets), encoding="utf-8")
        if split != "train":
            baseline = sacrebleu.corpus_bleu(sources, [targets]).score
            print(f"{split}: copying the source, BLEU {baseline:.2f}")


if __name__ == "__main__":
    main()
