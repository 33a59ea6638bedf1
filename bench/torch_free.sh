#!/usr/bin/env bash
# An exported model translating where torch is not installed: a fresh virtualenv holding seqkit
# (installed with --no-deps) and only the runtime's packages (README "Export"). `import torch` must fail
# there, and its translations of 200 test verses must equal the torch model's, greedy and beam 5.
#
#     bash bench/torch_free.sh [MODEL_DIR]      (default runs/demo; about 2 minutes, most of it pip)
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-runs/demo}
work=bench/work/torch-free
export PIP_CONSTRAINT=$PWD/.ci/constraints.txt
mkdir -p "$work"
python3 -m venv --clear "$work/venv"
# pip's notes (find-links, and that seqkit's own dependencies are missing: on purpose) go to a log
"$work/venv/bin/pip" install -q --no-deps . 2> "$work/pip.log"
"$work/venv/bin/pip" install -q numpy sentencepiece onnxruntime typer rich sacrebleu tomli-w 2>> "$work/pip.log"
if "$work/venv/bin/python" -c "import torch" 2>/dev/null; then
    echo "torch is importable in $work/venv: the check means nothing" >&2
    exit 1
fi
.venv/bin/seqkit export "$model" -o "$work/export"
gzip -dc corpora/bible-es-en/test.es.gz | sed -n 1,200p > "$work/input.es"  # (head: SIGPIPE under pipefail)
for beam in 1 5; do
    "$work/venv/bin/seqkit" translate "$work/export" "$work/input.es" --beam-size $beam -o "$work/onnx.$beam.en"
    .venv/bin/seqkit translate "$model" "$work/input.es" --beam-size $beam -o "$work/torch.$beam.en"
    cmp "$work/onnx.$beam.en" "$work/torch.$beam.en"
    echo "beam $beam: the export, without torch, wrote the torch model's $(wc -l < "$work/onnx.$beam.en") lines"
done
"$work/venv/bin/pip" list --format freeze | sed 's/^/    /'
