"""Why the bench's peers train slower than the same peers run on their own (../shared/peers/README.md):
the vocabulary. The bench gives every toolkit the SentencePiece model's 8k pieces on both sides, so that
all three train the same model; run on their own, Joey NMT and OpenNMT-py build their vocabularies from
the training data, which holds fewer pieces on each side, so their output layer and embeddings are
smaller. This trains each peer for a few minutes with each vocabulary, one run after the other, and
reports parameters and target tokens per second.

    python bench/peer_vocab.py [--minutes 3]     # `make bench-peers`; writes bench/results-peer-vocab.*
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import joey  # noqa: E402
import opennmt  # noqa: E402
import run  # noqa: E402

PEERS = {
    "joey": (joey, run.REPO / "bench" / ".venv-joey", "Joey NMT 2.3.0"),
    "onmt": (opennmt, run.REPO / "bench" / ".venv-onmt", "OpenNMT-py 3.5.1"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    args = parser.parse_args()
    work = run.REPO / "bench" / "work" / "peer-vocab"
    work.mkdir(parents=True, exist_ok=True)
    data = run.prepare(work, run.MODES["full"])
    pieces = joey.prepare_data(data["spm_model"], run.CORPUS, work / "joey", run.DEV_SENTENCES)
    rows = []
    for name, (module, venv, title) in PEERS.items():
        python = module.install(venv)
        for vocabulary in ("model", "data"):
            run.log(f"{title}: {args.minutes} min with the {vocabulary}'s vocabulary")
            trained = module.train(
                python, pieces, work / f"{name}-{vocabulary}", args.minutes, run.THREADS, run.SEED, vocabulary
            )
            rows.append(
                {
                    "peer": title,
                    "vocabulary": vocabulary,
                    "parameters": trained["parameters"],
                    "steps": trained["steps"],
                    "train_s": trained["train_s"],
                    "target_tokens_per_s": trained["target_tokens_per_s"],
                    "peak_rss_mb": trained["peak_rss_mb"],
                    "log": str(trained["log"]),
                }
            )
    results = {"date": time.strftime("%Y-%m-%d %H:%M"), "minutes": args.minutes, "rows": rows}
    out = run.REPO / "bench" / "results-peer-vocab"
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"# The peers' vocabulary ({results['date']}, {args.minutes} minutes of training each)",
        "",
        "model: the SentencePiece model's pieces on both sides (what `make bench` gives every toolkit); "
        "data: the pieces each side of the training data holds (what each peer builds on its own).",
        "",
        "| peer | vocabulary | parameters M | steps | train tgt tok/s | peak RSS MB |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        params = f"{r['parameters'] / 1e6:.2f}" if r["parameters"] else "-"
        lines.append(
            f"| {r['peer']} | {r['vocabulary']} | {params} | {r['steps']:,} | {r['target_tokens_per_s']:,.0f} "
            f"| {r['peak_rss_mb']:,.0f} |"
        )
    table = "\n".join(lines) + "\n"
    out.with_suffix(".md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
