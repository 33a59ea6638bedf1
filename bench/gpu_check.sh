#!/usr/bin/env bash
# seqkit on a lent CUDA machine (issue 16, section 5), at most about 8 minutes, from a copy of this tree:
#
#     bash bench/gpu_check.sh            # the device tool runs it in the repository root
#     bash bench/gpu_check.sh train decode   # only some groups: train decode resume torchrun
#
# The lent machine has its own python3 with a CUDA torch (2.11 when last seen) and most of seqkit's
# dependencies, no registry access; the torch pin does not apply. seqkit runs from the tree
# (PYTHONPATH=.). The pure-Python wheels it lacks (tomli-w, plotext) travel in an ignored .whl/ folder
# (`pip download --no-deps --python-version 3.12 ... -d .whl tomli-w plotext`, carried by the device tool)
# and are installed before the script (a PYTHONPATH set outside is kept):
#
#     python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#
# Wheels in shared/wheels/ are added to PYTHONPATH as they are. Each check prints one row; the script exits
# non-zero if any check failed. Run on an H200 on 2026-12-04: bench/README.md, section "GPU".
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
for wheel in shared/wheels/*.whl; do [ -e "$wheel" ] && PYTHONPATH=$PYTHONPATH:$PWD/$wheel; done
work=$(mktemp -d /tmp/seqkit-gpu-XXXXXX)
seqkit() { "$PY" -m seqkit "$@"; }
failed=0
rows=()
failures=()
groups=${*:-train decode resume torchrun}
wanted() { [[ " $groups " == *" $1 "* ]]; }

check() {  # check NAME COMMAND...: runs it, times it, keeps its last stderr line
    local name=$1; shift
    local start=$SECONDS
    if "$@" > "$work/$name.out" 2> "$work/$name.err"; then
        rows+=("$(printf '| %-28s | ok   | %4d s | %s |' "$name" $((SECONDS - start)) "$(tail -1 "$work/$name.err" | cut -c1-90)")")
    else
        failed=1
        failures+=("$name")
        rows+=("$(printf '| %-28s | FAIL | %4d s | %s |' "$name" $((SECONDS - start)) "$(tail -1 "$work/$name.err" | cut -c1-90)")")
    fi
}

"$PY" - <<'EOF' || exit 1
import torch
assert torch.cuda.is_available(), "no CUDA device"
print(f"torch {torch.__version__}, {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}")
EOF

config=corpora/bible-es-en/demo.toml
common=(--config "$config" --set train.max_minutes=1.0 --set train.valid_every=200 --set train.valid_max_sentences=100)
wanted train && for precision in fp32 bf16 fp16; do
    check "train $precision (1 min)" seqkit train "${common[@]}" --set train.device=cuda \
        --set train.precision=$precision --output "$work/$precision"
done
gzip -dc corpora/bible-es-en/test.es.gz | sed -n 1,500p > "$work/test.es"
gzip -dc corpora/bible-es-en/test.en.gz | sed -n 1,500p > "$work/test.en"
wanted decode && {
check "translate greedy" seqkit translate "$work/fp32" "$work/test.es" --device cuda --beam-size 1 -o "$work/greedy.en"
check "translate beam 5" seqkit translate "$work/fp32" "$work/test.es" --device cuda --beam-size 5 -o "$work/beam.en"
check "evaluate BLEU" seqkit evaluate -i "$work/beam.en" -r "$work/test.en" --json
check "evaluate --model" seqkit evaluate --model "$work/fp32" -s "$work/test.es" -r "$work/test.en" --json
}
# a checkpoint written on the CPU, resumed on the GPU
wanted resume && {
check "train on the CPU (20 steps)" seqkit train --config "$config" --set train.device=cpu \
    --set train.max_steps=20 --set train.valid_every=20 --set train.valid_max_sentences=50 --output "$work/moved"
check "resume it on the GPU" seqkit train --set train.device=cuda \
    --set train.max_steps=60 --set train.valid_every=20 --set train.valid_max_sentences=50 --resume "$work/moved"
}
wanted torchrun && {
gpus=$("$PY" -c "import torch; print(torch.cuda.device_count())")
check "torchrun nccl ($gpus GPU)" "$PY" -m torch.distributed.run --standalone --nproc-per-node "$gpus" -m seqkit train \
    "${common[@]}" --set train.max_minutes=0.5 --set train.device=cuda --output "$work/ddp"
}

printf '| %-28s | %-4s | %6s | %s |\n' check "" time "last line on stderr"
printf '|%s|\n' "------------------------------|------|--------|------------------------------------------"
printf '%s\n' "${rows[@]}"
"$PY" - "$work" <<'EOF'
import json, sys
from pathlib import Path
work = Path(sys.argv[1])
for name in ("evaluate BLEU", "evaluate --model"):
    path = work / f"{name}.out"
    if path.exists() and path.stat().st_size:
        print(name, json.dumps(json.loads(path.read_text()))[:300])
for run in ("fp32", "bf16", "fp16"):
    log = work / run / "train_log.jsonl"
    if log.exists():
        records = [json.loads(line) for line in log.read_text().splitlines()]
        trains = [r for r in records if r.get("kind") == "train"]
        if trains:
            last = trains[-1]
            print(run, {k: last.get(k) for k in ("step", "target_tokens_per_s", "loss", "elapsed_s")})
EOF
for name in "${failures[@]}"; do  # what a failed check said last, for the fix
    echo "--- $name"; tail -6 "$work/$name.err"
done
exit $failed
