#!/usr/bin/env bash
# Two demo trainings on the same 2 cores, the second started 45 s after the first (README "Speed",
# bench/README.md "Threads that wait"): `bash bench/shared_cores.sh adaptive` (seqkit's default: the thread
# count follows the load average) or `forced` (train.threads = 2 for both). About 2.5 minutes each; needs
# runs/demo (make demo) for its SentencePiece model. Prints each process's threads and target tokens/s.
set -u
cd "$(dirname "$0")/.."
mode=$1; extra=()
[ -f runs/demo/spm.model ] || { echo "shared_cores.sh: runs/demo/spm.model not found: run make demo first" >&2; exit 2; }
[ "$mode" = forced ] && extra=(--set train.threads=2)
rm -rf /tmp/e2e-$mode-1 /tmp/e2e-$mode-2
common=(--config corpora/bible-es-en/demo.toml --set tokenizer.model=runs/demo/spm.model --set train.log_every=10 --set train.valid_every=100000 "${extra[@]}")
.venv/bin/seqkit train "${common[@]}" --set train.max_steps=400 -o /tmp/e2e-$mode-1 2> /tmp/e2e-$mode-1.err &
p1=$!
sleep 45
.venv/bin/seqkit train "${common[@]}" --set train.max_steps=50 -o /tmp/e2e-$mode-2 2> /tmp/e2e-$mode-2.err
kill -INT $p1; wait $p1
python3 - "$mode" <<'PY'
import json, sys
mode = sys.argv[1]
for i in (1, 2):
    recs = [json.loads(l) for l in open(f"/tmp/e2e-{mode}-{i}/train_log.jsonl")]
    start = next(r for r in recs if r["kind"] == "start")
    train = [r for r in recs if r["kind"] == "train"]
    if i == 1:
        train = train[-5:]  # the last steps: while the second ran
    tps = [r["target_tokens_per_s"] for r in train]
    print(mode, f"process {i}: {start['threads']} threads, {sum(tps)/len(tps):.0f} target tokens/s over {len(tps)} log intervals")
PY
