#!/usr/bin/env bash
# Exported models running where torch is not installed: a fresh virtualenv holding seqkit (installed
# with --no-deps) and only the runtime's packages (README "Export"). `import torch` must fail there.
# Each model given is exported, then run there and by torch on the same input:
#   - a translation model: 200 test verses, greedy and beam 5, the same translations;
#   - a classifier of the genre corpus (make demo-classify's runs/genre): 1,000 test verses, the same
#     labels; and `evaluate --data` runs there.
#
#     bash bench/torch_free.sh [MODEL_DIR...]   (default runs/demo; about 2 minutes, most of it pip)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- runs/demo
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
for model in "$@"; do
    export_dir="$work/export-$(basename "$model")"
    .venv/bin/seqkit export "$model" -o "$export_dir"
    type=$(.venv/bin/python -c "import json, sys; print(json.load(open(sys.argv[1]))['type'])" "$export_dir/export.json")
    case "$type" in
    seq2seq)
        gzip -dc corpora/bible-es-en/test.es.gz | sed -n 1,200p > "$work/input.es"  # (head: SIGPIPE under pipefail)
        for beam in 1 5; do
            "$work/venv/bin/seqkit" translate "$export_dir" "$work/input.es" --beam-size $beam -o "$work/onnx.$beam.en"
            .venv/bin/seqkit translate "$model" "$work/input.es" --beam-size $beam -o "$work/torch.$beam.en"
            cmp "$work/onnx.$beam.en" "$work/torch.$beam.en"
            echo "$model, beam $beam: the export, without torch, wrote the torch model's $(wc -l < "$work/onnx.$beam.en") lines"
        done
        ;;
    classifier)
        gzip -dc corpora/bible-genre/test.en.tsv.gz | sed -n 1,1000p | cut -f2 > "$work/input.verses"
        "$work/venv/bin/seqkit" predict "$export_dir" "$work/input.verses" -o "$work/onnx.labels"
        .venv/bin/seqkit predict "$model" "$work/input.verses" -o "$work/torch.labels"
        cmp "$work/onnx.labels" "$work/torch.labels"
        echo "$model: the export, without torch, gave the torch model's $(wc -l < "$work/onnx.labels") labels"
        "$work/venv/bin/seqkit" evaluate --model "$export_dir" --data corpora/bible-genre/test.en.tsv.gz
        ;;
    *)
        echo "$model: model.type = $type has no check here" >&2
        exit 1
        ;;
    esac
done
"$work/venv/bin/pip" list --format freeze | sed 's/^/    /'
