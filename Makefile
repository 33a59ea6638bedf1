# Two commands on a fresh machine: `make demo` and `make test`. Both install first.
SHELL  := bash
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Every pip call (including build isolation) sees the torch pin.
export PIP_CONSTRAINT := $(abspath .ci/constraints.txt)
export PIP_DISABLE_PIP_VERSION_CHECK := 1

DEMO_DIR    := runs/demo
CORPUS      := corpora/bible-es-en
DEMO_CONFIG := $(CORPUS)/demo.toml

.PHONY: install demo demo-generate demo-classify test bench bench-full bench-peers bench-scale bench-serve bench-onnx bench-onnx-classify bench-shortlist bench-loops bench-copy bench-wait bench-classify bench-quality lint check clean

install: $(STAMP)

$(STAMP): pyproject.toml .ci/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	rm -rf $(DEMO_DIR)
	$(BIN)/seqkit train --config $(DEMO_CONFIG) --output $(DEMO_DIR)
	$(BIN)/seqkit plot $(DEMO_DIR) --output $(DEMO_DIR)/curves.png
	$(BIN)/seqkit translate $(DEMO_DIR) $(CORPUS)/test.es.gz --output $(DEMO_DIR)/test.hyp.en
	@echo "== test set: the model, and copying the Spanish source unchanged =="
	$(BIN)/seqkit evaluate -i $(DEMO_DIR)/test.hyp.en -i $(CORPUS)/test.es.gz -r $(CORPUS)/test.en.gz \
		--name model --name copy-source
	@echo "== sample translations =="
	@paste -d '\n' <(zcat $(CORPUS)/test.es.gz) <(zcat $(CORPUS)/test.en.gz) $(DEMO_DIR)/test.hyp.en | head -n 18 \
		| awk 'NR%3==1{print "source:    " $$0} NR%3==2{print "reference: " $$0} NR%3==0{print "model:     " $$0; print ""}'
	@echo "== where the model looks: attention of one verse (pictures in $(DEMO_DIR)/inspect) =="
	$(BIN)/seqkit inspect $(DEMO_DIR) --text "$$(zcat $(CORPUS)/test.es.gz | sed -n 3p)" --output $(DEMO_DIR)/inspect

LM_DIR := runs/lm
demo-generate: install
	rm -rf $(LM_DIR)
	$(BIN)/seqkit train --config $(CORPUS)/lm.toml --output $(LM_DIR)
	$(BIN)/seqkit evaluate --model $(LM_DIR) -r $(CORPUS)/test.en.gz
	@echo "== samples at temperature 0.5 =="
	$(BIN)/seqkit generate $(LM_DIR) "In the beginning" "Jesus said" "" --temperature 0.5 --seed 1 | cat
	@echo "== samples at temperature 1.0 =="
	$(BIN)/seqkit generate $(LM_DIR) "In the beginning" "Jesus said" "" --temperature 1.0 --seed 1 | cat

# `make demo-classify`: the genre of a verse (ten divisions of the Bible, English, 5 minutes), then rain
# tomorrow and tomorrow's maximum temperature in Seattle, and next year's sunspots (a minute each), each
# against its baselines (README "Classification and forecasting").
GENRE := corpora/bible-genre
SERIES := corpora/series
demo-classify: install
	rm -rf runs/genre runs/rain runs/temperature runs/sunspots
	$(BIN)/seqkit train --config $(GENRE)/genre.toml --output runs/genre
	$(BIN)/seqkit evaluate --model runs/genre --data $(GENRE)/test.en.tsv.gz --plot runs/genre/confusion.png
	$(BIN)/seqkit plot runs/genre --output runs/genre/curves.png
	@echo "== the pooling attention over one verse =="
	$(BIN)/seqkit inspect runs/genre --text "$$(zcat $(GENRE)/test.en.tsv.gz | sed -n 5p | cut -f2)" --output runs/genre/inspect
	$(BIN)/seqkit train --config $(SERIES)/rain.toml --output runs/rain
	$(BIN)/seqkit evaluate --model runs/rain --data $(SERIES)/seattle-weather.csv
	$(BIN)/seqkit train --config $(SERIES)/temperature.toml --output runs/temperature
	$(BIN)/seqkit evaluate --model runs/temperature --data $(SERIES)/seattle-weather.csv --plot runs/temperature/forecast.png
	$(BIN)/seqkit train --config $(SERIES)/sunspots.toml --output runs/sunspots
	$(BIN)/seqkit evaluate --model runs/sunspots --data $(SERIES)/sunspots.csv --plot runs/sunspots/forecast.png

test: install
	$(BIN)/python -m pytest

# What CI runs (.ci/run): the README's checks.
check: lint test

# Speed against OpenNMT-py 3.5.1 and Joey NMT 2.3.0 (installed into bench/.venv-onmt and bench/.venv-joey
# with the same torch pin): quick mode trains each for 1.5 minutes; bench-full for 12 minutes (59 minutes
# in all on 2026-12-02). Results: bench/results-{quick,full}.{json,md}.
bench: install
	$(BIN)/python bench/run.py --mode quick

bench-full: install
	$(BIN)/python bench/run.py --mode full

# Why the bench's peers train slower than on their own: each peer for 3 minutes with the bench's vocabulary
# (the SentencePiece model's) and with its own (built from the data): bench/results-peer-vocab.{json,md}
bench-peers: install
	$(BIN)/python bench/peer_vocab.py

# Corpora of 30k to 3M pairs (the bundled one repeated): time to the first step, peak RSS, tokens/s
# (bench/scale.py; about 15 minutes). Results: bench/results-scale.{json,md}.
bench-scale: install
	$(BIN)/python bench/scale.py

# seqkit serve under 1, 8 and 32 concurrent clients, greedy and beam 5, on the demo model (trained first
# when missing): bench/results-serve.{json,md}
bench-serve: install
	test -f $(DEMO_DIR)/model.safetensors || $(MAKE) demo
	$(BIN)/python bench/serve.py $(DEMO_DIR)

# The demo model decoding the test set with torch (fp32, --quantize) and onnxruntime (an export, fp32
# and int8), greedy and beam 5: bench/results-onnx.{json,md}. bench/torch_free.sh checks that an export
# runs where torch is not installed.
bench-onnx: install
	test -f $(DEMO_DIR)/model.safetensors || $(MAKE) demo
	$(BIN)/python bench/onnx.py $(DEMO_DIR)

# The genre classifier and the temperature forecaster (make demo-classify's, trained first when missing)
# predicting their test data with torch (fp32, --quantize) and onnxruntime (an export, fp32 and int8):
# bench/results-onnx-classify.{json,md}
bench-onnx-classify: install
	test -f runs/genre/model.safetensors -a -f runs/temperature/model.safetensors || $(MAKE) demo-classify
	$(BIN)/python bench/onnx_classify.py runs/genre:$(GENRE)/test.en.tsv.gz runs/temperature:$(SERIES)/seattle-weather.csv

# The vocabulary shortlist on the demo model (trained first when missing): speed and BLEU, greedy and beam
# 5, float32 and int8, at several shortlist sizes: bench/results-shortlist.{json,md}
bench-shortlist: install
	test -f $(DEMO_DIR)/model.safetensors || $(MAKE) demo
	$(BIN)/python bench/shortlist.py $(DEMO_DIR)

# The rules against loops (no-repeat n-grams, repetition and coverage penalties) on the demo model: BLEU,
# chrF, outputs that repeat a 4-gram, speed; about 2 minutes: bench/results-loops.{json,md}
bench-loops: install
	test -f $(DEMO_DIR)/model.safetensors || $(MAKE) demo
	$(BIN)/python bench/loops.py $(DEMO_DIR)

# Copy attention and coverage on the demo recipe and on two copy-heavy tasks (bench/copy_task.py), about 170
# minutes: nine trainings of 6 to 8 minutes, two of 2, six of 1,200 updates and four of 600, then
# bench/copy_quality.py: bench/results-copy{,-doubled,-luong,-luong-demo}.{json,md}
bench-copy: install
	$(BIN)/python bench/copy_task.py bench/work/copy-task
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/demo-plain $(COPY_BENCH_RECIPE) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/demo-copy-coverage --set model.copy=true --set model.coverage=true $(COPY_BENCH_RECIPE) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/demo-copy --set model.copy=true $(COPY_BENCH_RECIPE) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/demo-cov01 --set model.copy=true --set model.coverage=true --set train.coverage_loss=0.1 $(COPY_BENCH_RECIPE) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/demo-copy-then-copy --set model.copy=true --set train.init_from=runs/demo-copy --set train.max_minutes=2 --set train.valid_every=150 $(COPY_BENCH_RECIPE) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/demo-copy-then-coverage --set model.copy=true --set model.coverage=true --set train.init_from=runs/demo-copy --set train.max_minutes=2 --set train.valid_every=150 $(COPY_BENCH_RECIPE) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/edit-plain $(COPY_TASK) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/edit-copy $(COPY_TASK) --set model.copy=true --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/edit-copy-start $(COPY_TASK) --set model.copy=true --set model.copy_gate_start=copying --overwrite
	$(BIN)/python bench/copy_task.py bench/work/copy-task-doubled --edits doubled
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-plain $(DOUBLED_TASK) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-copy-start $(DOUBLED_TASK) --set model.copy=true --set model.copy_gate_start=copying --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-copy-clip5 $(DOUBLED_TASK) --set model.copy=true --set model.copy_gate_start=copying --set train.clip_norm=5 --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-copy-random $(DOUBLED_TASK) --set model.copy=true --set train.clip_norm=5 --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-copy-coverage $(DOUBLED_TASK) --set model.copy=true --set model.copy_gate_start=copying --set train.clip_norm=5 --set model.coverage=true --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-luong-plain $(DOUBLED_TASK) --set model.attention=luong --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-luong-copy-random $(DOUBLED_LUONG_COPY) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-luong-copy-start $(DOUBLED_LUONG_COPY) --set model.copy_gate_start=copying --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-luong-copy-cov-random $(DOUBLED_LUONG_COPY) --set model.coverage=true --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/doubled-luong-copy-cov $(DOUBLED_LUONG_COPY) --set model.coverage=true --set model.copy_gate_start=copying --overwrite
	$(BIN)/python bench/copy_quality.py --demo runs/demo-plain runs/demo-copy runs/demo-copy-coverage runs/demo-cov01 runs/demo-copy-then-copy runs/demo-copy-then-coverage
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/demo-luong-plain --set model.attention=luong $(COPY_BENCH_RECIPE) --overwrite
	$(BIN)/seqkit train --config $(DEMO_CONFIG) -o runs/demo-luong-copy --set model.attention=luong --set model.copy=true $(COPY_BENCH_RECIPE) --overwrite
	$(BIN)/python bench/copy_quality.py --demo runs/demo-luong-plain runs/demo-luong-copy --edit --out results-copy-luong-demo
	$(BIN)/python bench/copy_quality.py --demo --edit runs/doubled-plain runs/doubled-copy-start runs/doubled-copy-clip5 runs/doubled-copy-random runs/doubled-copy-coverage --out results-copy-doubled
	$(BIN)/python bench/copy_quality.py --demo --edit runs/doubled-plain runs/doubled-copy-coverage runs/doubled-luong-plain runs/doubled-luong-copy-random runs/doubled-luong-copy-start runs/doubled-luong-copy-cov-random runs/doubled-luong-copy-cov --out results-copy-luong

# what the copy bench changes in the demo recipe, for every run, its plain model (runs/demo-plain)
# included: no label smoothing (a copy model cannot smooth its labels: config error), two threads, and the
# dropout of 0.1 the recorded runs had (demo.toml has none since 2026-12-06)
COPY_BENCH_RECIPE = --set train.label_smoothing=0 --set train.threads=2 --set model.dropout=0.1

COPY_TASK = --set data.train=$(CURDIR)/bench/work/copy-task/train --set data.dev=$(CURDIR)/bench/work/copy-task/dev \
	--set data.src_lang=src --set data.tgt_lang=tgt --set train.max_minutes=6 --set train.valid_every=150 $(COPY_BENCH_RECIPE)

# the doubled-words task (the source determines every edit): a fixed number of updates, validated often,
# since what is compared is the update at which each model passes copying the source
DOUBLED_TASK = --set data.train=$(CURDIR)/bench/work/copy-task-doubled/train --set data.dev=$(CURDIR)/bench/work/copy-task-doubled/dev \
	--set data.src_lang=src --set data.tgt_lang=tgt --set train.max_minutes=0 --set train.max_steps=1200 --set train.valid_every=75 $(COPY_BENCH_RECIPE)
# copy models in Luong order (attention after the decoder has read the piece it wrote last): they pass
# copying the source within 300 updates, so 600 are enough to see it
DOUBLED_LUONG_COPY = $(DOUBLED_TASK) --set train.max_steps=600 --set model.attention=luong --set model.copy=true --set train.clip_norm=5

# OpenMP's wait policy (spinning or sleeping threads) on an idle and a busy machine: bench/results-wait.*
bench-wait: install
	$(BIN)/python bench/wait_policy.py

# The classifier and forecasters against their baselines, per language (bench/results-classify/).
bench-classify: install
	bash bench/classify.sh

# Quality at longer budgets: the demo recipe and the bench workload, 60 minutes each, test BLEU / chrF of
# the best checkpoint within 12 minutes, of the whole run and of an average of the last 5 checkpoints;
# dev BLEU against minutes (about 2 hours 10 minutes): bench/results-quality.{json,md,png}
bench-quality: install
	$(BIN)/python bench/quality.py

# Style (ruff, also over bench/) and types (mypy on seqkit/, settings in pyproject.toml).
lint: install
	$(BIN)/ruff check seqkit tests corpora bench
	$(BIN)/ruff format --check seqkit tests corpora bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache *.egg-info bench/.venv-joey bench/.venv-onmt bench/work
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
