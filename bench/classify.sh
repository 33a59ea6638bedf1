#!/usr/bin/env bash
# `make bench-classify`: the demo-classify models with two threads set (the load-average rule would pick
# one on a machine that was just busy), English and Spanish genre, rain, temperature, sunspots; each
# evaluation as JSON in bench/results-classify/ (model beside its baselines). About 15 minutes.
set -euo pipefail
BIN=${BIN:-.venv/bin}
OUT=bench/results-classify
mkdir -p "$OUT"
THREADS="--set train.threads=2"
for lang in ${LANGS-en es}; do
  rm -rf "runs/genre-$lang"
  $BIN/seqkit train --config corpora/bible-genre/genre.toml --output "runs/genre-$lang" $THREADS \
    --set "data.train=corpora/bible-genre/train.$lang.tsv.gz" --set "data.dev=corpora/bible-genre/dev.$lang.tsv.gz"
  $BIN/seqkit evaluate --model "runs/genre-$lang" --data "corpora/bible-genre/test.$lang.tsv.gz" --json \
    --plot "$OUT/genre-$lang-confusion.png" > "$OUT/genre-$lang.json"
done
for task in rain temperature sunspots; do
  rm -rf "runs/$task"
  data=corpora/series/seattle-weather.csv
  [ "$task" = sunspots ] && data=corpora/series/sunspots.csv
  $BIN/seqkit train --config "corpora/series/$task.toml" --output "runs/$task" $THREADS
  $BIN/seqkit evaluate --model "runs/$task" --data "$data" --json --plot "$OUT/$task.png" > "$OUT/$task.json"
done
$BIN/python - <<'PY'
import json, pathlib
out = pathlib.Path("bench/results-classify")
lines = ["| model | test | model | " + "baselines |", "| --- | --- | --- | --- |"]
for name in ("genre-en", "genre-es", "rain", "temperature", "sunspots"):
    r = json.loads((out / f"{name}.json").read_text())
    s = r["scores"]
    if r["kind"] == "classifier":
        mine = f"accuracy {s['accuracy']:.4f}, macro-F1 {s['macro_f1']:.4f}"
        base = "; ".join(f"{b['name']} {b['accuracy']:.4f} / {b['macro_f1']:.4f}" for b in r["baselines"] if "accuracy" in b)
    else:
        mine = f"RMSE {s['rmse']:.3f}, MAE {s['mae']:.3f}"
        base = "; ".join(f"{b['name']} {b['rmse']:.3f} / {b['mae']:.3f}" for b in r["baselines"] if "rmse" in b)
    lines.append(f"| {name} | {s['examples']:,} | {mine} | {base} |")
(out / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
