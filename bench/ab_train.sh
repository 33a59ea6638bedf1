#!/bin/bash
# Whole training runs of the bench workload from two source trees, alternating, on an idle machine:
# the A/B measurements of "What made seqkit faster" (bench/README.md).
#
#   bench/ab_train.sh BEFORE_TREE AFTER_TREE [PRECISION] [STEPS] [ROUNDS]
#
# e.g. `git worktree add --detach /tmp/before HEAD~1 && bench/ab_train.sh /tmp/before . fp32 80 2`.
# Each run trains the workload of the last `make bench-full` (its config.toml: same data, SentencePiece
# model and seed) for STEPS steps without validation, from its tree's code with this checkout's
# virtualenv, and prints the mean of its logged target tokens/s (the first log line left out: start-up)
# and the seconds its log gives at the last step. Runs and logs go to bench/work/ab/.
set -euo pipefail
before=$(realpath "$1"); after=$(realpath "$2"); precision=${3:-fp32}; steps=${4:-80}; rounds=${5:-2}
repo=$(realpath "$(dirname "$0")/..")
config=$repo/bench/work/full/seqkit-fp32/config.toml
[ -f "$config" ] || { echo "ab_train.sh: $config not found: run make bench-full first" >&2; exit 2; }
work=$repo/bench/work/ab
mkdir -p "$work"
for round in $(seq 1 "$rounds"); do
  for arm in before after; do
    tree=$before; [ "$arm" = after ] && tree=$after
    run=$work/$arm-$precision-$round
    rm -rf "$run"
    (cd "$tree" && PYTHONPATH=$tree "$repo/.venv/bin/python" -m seqkit train --config "$config" -o "$run" \
      --max-steps "$steps" --max-minutes 0 --precision "$precision" --set train.valid_every=100000 \
      --set train.valid_max_sentences=10 --set train.log_every=10 2> "$run.log")
    rate=$(grep -o "[0-9,]* target tokens/s" "$run.log" | tr -d , | awk 'NR>1 {s+=$1; n++} END {printf "%.0f", s/n}')
    elapsed=$(grep "^step $steps " "$run.log" | grep -o "[0-9:]* elapsed")
    echo "$precision round $round $arm: $rate target tokens/s (mean of the logged), step $steps at $elapsed"
  done
done
