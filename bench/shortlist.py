"""`make bench-shortlist`: what the vocabulary shortlist (decoding/shortlist.py) buys and costs on a trained
model: sentences/s, output pieces/s and BLEU on the bundled test set, greedy and beam 5, float32 and int8,
with the model's own shortlist and with shortlists of other sizes (`--translations`); and the BLEU of each
on the dev set (decoded once, not timed), to choose a size by without looking at the test set.

    python bench/shortlist.py MODEL_DIR [--rounds 3] [--translations 10,20,50,100]

Every variant decodes the same 1,000 test verses in this one process, in interleaved rounds (the medians
are reported, with the range): decoding alone is timed, not loading. Writes bench/results-shortlist.*
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from seqkit import config as config_lib  # noqa: E402
from seqkit import model_types  # noqa: E402
from seqkit.data.arrays import TokenArrays, id_dtype  # noqa: E402
from seqkit.decoding import shortlist  # noqa: E402
from seqkit.decoding.search import decode_corpus  # noqa: E402
from seqkit.decoding.torch_steps import Seq2SeqSteps  # noqa: E402
from seqkit.runtime import devices  # noqa: E402
from seqkit.scoring.metrics import corpus_score  # noqa: E402

CORPUS = REPO / "corpora" / "bible-es-en"
THREADS = 2


def read_gz(path: Path) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return f.read().splitlines()


def training_arrays(model_dir: Path, sizes: tuple[int, int]) -> tuple[TokenArrays, TokenArrays]:
    """The model's tokenized training pairs, from its cache (data/corpus.py)."""
    folder = sorted((model_dir / "cache").glob("train-*"))[-1]
    return (
        TokenArrays.open(folder / "src", id_dtype(sizes[0])),
        TokenArrays.open(folder / "tgt", id_dtype(sizes[1])),
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--translations", default="10,20,50,100", help="other shortlist sizes to measure")
    parser.add_argument("--output", type=Path, default=REPO / "bench" / "results-shortlist")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    cfg, tokenizer, model = model_types.load(args.model_dir, torch.device("cpu"))
    quantized = devices.quantize_int8(model)
    sources, references = read_gz(CORPUS / "test.es.gz"), read_gz(CORPUS / "test.en.gz")
    src_ids = tokenizer.encode_src(sources)
    dev_ids, dev_references = (
        tokenizer.encode_src(read_gz(CORPUS / "dev.es.gz")),
        read_gz(CORPUS / "dev.en.gz"),
    )
    sizes = (tokenizer.src_vocab_size, tokenizer.tgt_vocab_size)
    lists = {"none": None, "model's": shortlist.read(args.model_dir, *sizes)}
    src, tgt = training_arrays(args.model_dir, sizes)
    for k in [int(k) for k in args.translations.split(",") if k]:
        start = time.perf_counter()
        lists[f"k={k}"] = shortlist.build(src.ids, src.offsets, tgt.ids, tgt.offsets, *sizes, translations=k)
        print(f"built k={k} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    columns = {  # mean columns per batch of the decoding batch size, over the test set
        name: float(
            np.mean([len(s.columns(np.array(sum(src_ids[i : i + 64], [])))) for i in range(0, 1000, 64)])
        )
        for name, s in lists.items()
        if s is not None
    }
    given = Seq2SeqSteps(model).columns(None)  # without a shortlist: the pieces training gave the layer
    columns["none"] = float(sizes[1] if given is None else len(given))
    variants = [(w, name, beam) for w in ("fp32", "int8") for name in lists for beam in (1, 5)]
    timings: dict = {v: [] for v in variants}
    outputs: dict = {}
    dev_bleu: dict = {}
    for round_ in range(args.rounds):
        for weights, name, beam in variants:
            steps = Seq2SeqSteps(quantized if weights == "int8" else model)
            if lists[name] is not None:
                steps = shortlist.ShortlistSteps(steps, lists[name])
            decode = config_lib.with_overrides(cfg, {"decode": {"beam_size": beam}}, "bench").decode
            start = time.perf_counter()
            best = [options[0].tokens for options in decode_corpus(steps, src_ids, decode)]
            timings[(weights, name, beam)].append(time.perf_counter() - start)
            outputs[(weights, name, beam)] = best
            if round_ == 0:
                dev_best = [options[0].tokens for options in decode_corpus(steps, dev_ids, decode)]
                dev_hyps = tokenizer.decode_tgt(dev_best)
                dev_bleu[(weights, name, beam)] = corpus_score("bleu", dev_hyps, [dev_references]).score
        print(f"round {round_ + 1} of {args.rounds} done", file=sys.stderr)
    rows = []
    for weights, name, beam in variants:
        best = outputs[(weights, name, beam)]
        plain = outputs[("fp32", "none", beam)]
        hyps = tokenizer.decode_tgt(best)
        seconds = timings[(weights, name, beam)]
        pieces = sum(len(t) for t in best)
        rows.append(
            {
                "weights": weights,
                "shortlist": name,
                "beam_size": beam,
                "columns_per_batch": round(columns[name], 0),
                "sentences_per_s": round(len(best) / statistics.median(seconds), 1),
                "sentences_per_s_range": [
                    round(len(best) / max(seconds), 1),
                    round(len(best) / min(seconds), 1),
                ],
                "pieces_per_s": round(pieces / statistics.median(seconds)),
                "mean_length": round(pieces / len(best), 2),
                "bleu": round(corpus_score("bleu", hyps, [references]).score, 2),
                "chrf": round(corpus_score("chrf", hyps, [references]).score, 2),
                "dev_bleu": round(dev_bleu[(weights, name, beam)], 2),
                "same_as_fp32": round(sum(a == b for a, b in zip(best, plain, strict=True)) / len(best), 3),
            }
        )
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "model": str(args.model_dir),
        "vocab": sizes,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "rows": rows,
    }
    args.output.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# make bench-shortlist ({results['date']})",
        "",
        f"{args.model_dir}: vocabulary {sizes[1]:,} target pieces; 1,000 test verses; {THREADS} threads; "
        f"median (range) of {args.rounds} interleaved rounds.",
        "",
        "| weights | shortlist | beam | columns / batch | sent/s | pieces/s (len) | BLEU | chrF | same as fp32 | dev BLEU |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        low, high = r["sentences_per_s_range"]
        lines.append(
            f"| {r['weights']} | {r['shortlist']} | {r['beam_size']} | {r['columns_per_batch']:,.0f} "
            f"| {r['sentences_per_s']:.1f} ({low:.0f}-{high:.0f}) | {r['pieces_per_s']:,} ({r['mean_length']:.1f}) "
            f"| {r['bleu']:.2f} | {r['chrf']:.2f} | {r['same_as_fp32']:.1%} | {r['dev_bleu']:.2f} |"
        )
    table = "\n".join(lines) + "\n"
    args.output.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
