"""The training log's records: typed in memory, JSON on disk in seqkit 0.1's layout where one existed,
and logs written by seqkit 0.1 still read."""

from __future__ import annotations

import dataclasses
import json

import pytest

from seqkit import modeldir
from seqkit.training import log as training_log
from seqkit.training.log import (
    EndRecord,
    GradRecord,
    Restored,
    StartRecord,
    TrainRecord,
    ValidRecord,
    WarningRecord,
)

SIGNATURE = "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.4.3"

# one record of each kind, every optional field set to something other than its default
RECORDS = [
    StartRecord(
        "start",
        "seq2seq",
        {"train_pairs": 2000, "skipped_pairs": 3, "dev_pairs": 60},
        71234,
        43,
        2,
        "cuda:0",
        "bf16",
        processes=2,
    ),
    StartRecord(
        "resume",
        "lm",
        {"train_lines": 100, "vocab": 30},
        5000,
        10,
        1,
        "cpu",
        "fp32",
        restored=Restored(step=30, epoch=2, learning_rate=5e-4, best_metric="ppl", best_score=3.25),
    ),
    TrainRecord(50, 2, 1.5, 4.25, 0.625, 0.75, 1e-3, 1234.5, 2000, 6.5),
    GradRecord(51, 0.5, True),
    GradRecord(52, None, False, overflow=True, loss_scale=32768.0),
    ValidRecord(
        100,
        3,
        {"loss": 0.5, "ppl": 1.6487, "bleu": 42.5, "chrf": 61.0},
        {"bleu": SIGNATURE, "chrf": "nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.4.3"},
        sentences=60,
        validation_s=0.75,
        best=True,
        elapsed_s=12.5,
        gradients={"clipped_fraction": 0.25, "mean_grad_norm": 0.875, "layer_grad_norms": {"encoder": 0.5}},
    ),
    ValidRecord(200, 4, {"loss": 0.25, "ppl": 1.284, "bpc": 0.36}),
    WarningRecord(120, "exploding gradients: 100% of the last 50 steps clipped"),
    EndRecord("end", "max_steps", 600, 13, "bleu", 100.0, SIGNATURE, 61.5, 120000, 40.25),
    EndRecord("interrupted", "SIGTERM", 37, 0, "ppl", 2.5),
]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{type(r).__name__}-{getattr(r, 'kind', '')}")
def test_every_record_round_trips_through_json(record):
    values = training_log.to_json(record)
    assert json.loads(json.dumps(values)) == values  # plain JSON
    assert training_log.from_json(json.loads(json.dumps(values))) == record


def test_records_round_trip_through_the_file(tmp_path):
    for record in RECORDS:
        training_log.append(tmp_path, record)
    assert training_log.read_all(tmp_path) == RECORDS
    lines = (tmp_path / modeldir.LOG).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [training_log.to_json(r) for r in RECORDS]


def test_a_record_after_a_line_torn_by_a_kill_starts_a_line_of_its_own(tmp_path):
    # (glued to the torn line, a resumed run's record was skipped with it: info and plot kept the steps
    # of the attempt it replaced)
    training_log.append(tmp_path, RECORDS[0])
    with open(tmp_path / modeldir.LOG, "ab") as log:
        log.write(b'{"kind": "train", "st')  # a kill -9 in the middle of a write
    training_log.append(tmp_path, RECORDS[1])
    assert training_log.read_all(tmp_path) == RECORDS[:2]


def test_unknown_kinds_are_skipped():
    assert training_log.from_json({"kind": "hyperparameter_search", "step": 3}) is None


def test_the_json_keeps_seqkit_0_1s_layout_for_train_grad_valid_and_warning_records():
    train, grad, overflow, valid, _, warning = (training_log.to_json(r) for r in RECORDS[2:8])
    assert train == {"kind": "train", "step": 50, "epoch": 2, "loss": 1.5, "ppl": 4.25, "accuracy": 0.625,
                     "grad_norm": 0.75, "lr": 1e-3, "target_tokens_per_s": 1234.5, "tokens": 2000,
                     "elapsed_s": 6.5}  # fmt: skip
    assert grad == {"kind": "grad", "step": 51, "norm": 0.5, "clipped": True}
    assert overflow == {"kind": "grad", "step": 52, "norm": None, "clipped": False, "overflow": True,
                        "loss_scale": 32768.0}  # fmt: skip
    assert valid == {
        "kind": "valid", "step": 100, "epoch": 3,
        "dev_loss": 0.5, "dev_ppl": 1.6487, "dev_bleu": 42.5, "dev_chrf": 61.0,
        "bleu_signature": SIGNATURE, "chrf_signature": RECORDS[5].signatures["chrf"], "dev_sentences": 60,
        "validation_s": 0.75, "best": True, "elapsed_s": 12.5,
        "clipped_fraction": 0.25, "mean_grad_norm": 0.875, "layer_grad_norms": {"encoder": 0.5},
    }  # fmt: skip
    assert warning == {"kind": "warning", "step": 120, "message": RECORDS[7].message}


def test_start_records_nest_their_counts_and_end_records_name_their_metric():
    start = training_log.to_json(RECORDS[0])
    assert start["model_type"] == "seq2seq" and start["data"] == RECORDS[0].data
    assert "train_pairs" not in start
    end = training_log.to_json(RECORDS[8])
    assert (end["best_metric"], end["best_score"]) == ("bleu", 100.0) and "best_dev_bleu" not in end


# --- logs written by seqkit 0.1 ---------------------------------------------------------------------------

OLD_SEQ2SEQ_LOG = [
    {"kind": "start", "train_pairs": 2000, "skipped_pairs": 0, "dev_pairs": 60, "src_vocab": 16, "tgt_vocab": 16,
     "parameters": 71234, "steps_per_epoch": 43, "threads": 1, "device": "cpu", "precision": "fp32",
     "processes": 1},
    {"kind": "train", "step": 50, "epoch": 2, "loss": 1.5, "ppl": 4.48, "accuracy": 0.5, "grad_norm": 0.75,
     "lr": 0.001, "target_tokens_per_s": 1000.0, "tokens": 2000, "elapsed_s": 6.0},
    {"kind": "grad", "step": 51, "norm": 0.5, "clipped": False},
    {"kind": "valid", "step": 100, "epoch": 3, "dev_loss": 0.5, "dev_ppl": 1.65, "dev_bleu": 42.5,
     "bleu_signature": SIGNATURE, "dev_chrf": 61.0, "chrf_signature": "nrefs:1|chrf", "dev_sentences": 60,
     "validation_s": 0.75, "best": True, "clipped_fraction": 0.0, "mean_grad_norm": 0.5,
     "layer_grad_norms": {"encoder": 0.25}, "elapsed_s": 12.5},
    {"kind": "resume", "train_pairs": 2000, "skipped_pairs": 0, "dev_pairs": 60, "src_vocab": 16,
     "tgt_vocab": 16, "parameters": 71234, "steps_per_epoch": 43, "threads": 1, "device": "cpu",
     "precision": "fp32", "processes": 1, "step": 100, "epoch": 3, "learning_rate": 0.0005,
     "best_dev_bleu": 42.5},
    {"kind": "end", "reason": "max_steps", "steps": 600, "epochs": 13, "best_dev_bleu": 100.0,
     "best_signature": SIGNATURE, "elapsed_s": 61.5, "target_tokens": 120000, "step_s": 40.25},
]  # fmt: skip


def test_a_seqkit_0_1_seq2seq_log_reads_as_typed_records(tmp_path):
    (tmp_path / modeldir.LOG).write_text("".join(json.dumps(r) + "\n" for r in OLD_SEQ2SEQ_LOG))
    start, train, grad, valid, resume, end = training_log.read_all(tmp_path)
    data = {"train_pairs": 2000, "skipped_pairs": 0, "dev_pairs": 60, "src_vocab": 16, "tgt_vocab": 16}
    assert start == StartRecord("start", "seq2seq", data, 71234, 43, 1, "cpu", "fp32", 1)
    assert train == TrainRecord(50, 2, 1.5, 4.48, 0.5, 0.75, 0.001, 1000.0, 2000, 6.0)
    assert grad == GradRecord(51, 0.5, False)
    assert valid == ValidRecord(
        100,
        3,
        {"loss": 0.5, "ppl": 1.65, "bleu": 42.5, "chrf": 61.0},
        {"bleu": SIGNATURE, "chrf": "nrefs:1|chrf"},
        sentences=60,
        validation_s=0.75,
        best=True,
        elapsed_s=12.5,
        gradients={"clipped_fraction": 0.0, "mean_grad_norm": 0.5, "layer_grad_norms": {"encoder": 0.25}},
    )
    assert valid.score("bleu") == 42.5
    assert resume == StartRecord("resume", "seq2seq", data, 71234, 43, 1, "cpu", "fp32", 1,
                                 restored=Restored(100, 3, 0.0005, "bleu", 42.5))  # fmt: skip
    assert end == EndRecord("end", "max_steps", 600, 13, "bleu", 100.0, SIGNATURE, 61.5, 120000, 40.25)
    assert end.finished
    # and written again, the valid, train and grad records are the very JSON they were read from
    for old, record in zip(OLD_SEQ2SEQ_LOG, (start, train, grad, valid), strict=False):
        if old["kind"] != "start":
            assert training_log.to_json(record) == old


def test_a_seqkit_0_1_language_model_log_reads_as_typed_records(tmp_path):
    old = [
        {"kind": "start", "train_lines": 100, "train_tokens": 4000, "streams": 8, "dev_lines": 4, "vocab": 30,
         "parameters": 5000, "steps_per_epoch": 15, "threads": 2},  # no device, precision or processes yet
        {"kind": "valid", "step": 200, "epoch": 14, "dev_loss": 0.25, "dev_ppl": 1.28, "dev_bpc": 0.36,
         "validation_s": 0.1, "best": True, "elapsed_s": 3.0},
        {"kind": "interrupted", "reason": "SIGINT", "steps": 230, "epochs": 15, "best_dev_ppl": 1.28,
         "elapsed_s": 3.5, "target_tokens": 50000, "step_s": 3.0},
    ]  # fmt: skip
    (tmp_path / modeldir.LOG).write_text("".join(json.dumps(r) + "\n" for r in old))
    start, valid, end = training_log.read_all(tmp_path)
    data = {"train_lines": 100, "train_tokens": 4000, "streams": 8, "dev_lines": 4, "vocab": 30}
    assert start == StartRecord("start", "lm", data, 5000, 15, 2, "cpu", "fp32", 1)
    assert valid.scores == {"loss": 0.25, "ppl": 1.28, "bpc": 0.36} and valid.signatures == {}
    assert valid.sentences is None and valid.gradients == {}
    assert end == EndRecord("interrupted", "SIGINT", 230, 15, "ppl", 1.28, "", 3.5, 50000, 3.0)
    assert not end.finished


def test_a_trained_run_writes_the_layout_readers_expect(reverse_model):
    """The JSON lines of a real run: seqkit 0.1's keys for train, grad and valid records; start records
    with the model type and nested counts; end records with the metric they name."""
    lines = [json.loads(line) for line in (reverse_model / modeldir.LOG).read_text().splitlines()]
    by_kind: dict[str, list[dict]] = {}
    for values in lines:
        by_kind.setdefault(values["kind"], []).append(values)
    assert set(by_kind) == {"start", "train", "grad", "valid", "end"}
    train_keys = {"kind", "step", "epoch", "loss", "ppl", "accuracy", "grad_norm", "lr", "target_tokens_per_s",
                  "tokens", "elapsed_s"}  # fmt: skip
    assert all(set(r) == train_keys for r in by_kind["train"])
    assert all(set(r) == {"kind", "step", "norm", "clipped"} for r in by_kind["grad"])
    valid_keys = {"kind", "step", "epoch", "dev_loss", "dev_ppl", "dev_bleu", "bleu_signature", "dev_chrf",
                  "chrf_signature", "dev_sentences", "validation_s", "best", "clipped_fraction",
                  "mean_grad_norm", "layer_grad_norms", "elapsed_s"}  # fmt: skip
    assert all(set(r) == valid_keys for r in by_kind["valid"])
    (start,) = by_kind["start"]
    assert start["model_type"] == "seq2seq"
    assert set(start["data"]) == {
        "train_pairs", "skipped_pairs", "empty_pairs", "long_pairs", "ratio_pairs", "duplicate_pairs",
        "bom_lines", "cr_lines", "control_lines", "break_lines", "dev_pairs", "dev_held_out", "cached", "src_vocab",
        "tgt_vocab",
    }  # fmt: skip
    (end,) = by_kind["end"]
    assert end["best_metric"] == "bleu" and end["best_score"] == max(r["dev_bleu"] for r in by_kind["valid"])
    assert [training_log.to_json(r) for r in training_log.read_all(reverse_model)] == lines


def test_a_validation_counts_the_dev_sentences_it_decoded(reverse_model, reverse_data):
    # train.valid_max_sentences above the dev set's size was logged as the count
    from seqkit import config as config_lib
    from seqkit import model_types
    from seqkit.data.corpus import tokenize_parallel
    from seqkit.data.text import read_lines
    from seqkit.training.seq2seq import validate

    cfg, tokenizer, model = model_types.load(reverse_model)
    src, tgt = (read_lines(f"{reverse_data}/dev.{side}")[:7] for side in ("src", "tgt"))
    dev = tokenize_parallel(tokenizer, src, tgt, None)
    many = config_lib.with_overrides(cfg, {"train": {"valid_max_sentences": 300}}, "test")
    assert validate(model, tokenizer, dev, many).sentences == 7
    few = config_lib.with_overrides(cfg, {"train": {"valid_max_sentences": 3}}, "test")
    assert validate(model, tokenizer, dev, few).sentences == 3


def test_a_validation_without_a_sentence_count_writes_the_layout_of_seqkit_0_1():
    # (mutation review: the layout was checked for a validation with BLEU only; a language model's got a
    # "dev_sentences": null that seqkit 0.1's readers never saw)
    assert training_log.to_json(RECORDS[6]) == {
        "kind": "valid", "step": 200, "epoch": 4, "dev_loss": 0.25, "dev_ppl": 1.284, "dev_bpc": 0.36,
        "validation_s": 0.0, "best": False, "elapsed_s": 0.0,
    }  # fmt: skip


def test_a_resume_record_with_an_infinite_best_score_reads_as_no_score():
    # earlier versions wrote a run resumed before its first validation as -Infinity (as for end records)
    values = json.loads(json.dumps(training_log.to_json(RECORDS[1])))
    values["restored"]["best_score"] = float("-inf")
    again = json.loads(json.dumps(values))  # (json writes and reads it as -Infinity)
    assert training_log.from_json(again).restored.best_score is None


def test_a_resume_drops_every_record_of_the_steps_after_its_checkpoint_and_keeps_those_of_it():
    # (mutation review: warnings of the discarded steps were kept unseen; test_curves has no warning)
    start = RECORDS[0]
    train, valid = (
        TrainRecord(10, 1, 1.5, 4.5, 0.5, 0.75, 1e-3, 1000.0, 400, 3.0),
        ValidRecord(10, 1, {"ppl": 4.0}),
    )
    later = [GradRecord(11, 0.5, False), WarningRecord(12, "non-finite loss or gradient at step 12: update skipped"),
             TrainRecord(15, 1, 1.0, 3.0, 0.5, 0.75, 1e-3, 1000.0, 400, 5.0), ValidRecord(15, 1, {"ppl": 3.0})]  # fmt: skip
    interrupted = EndRecord("interrupted", "SIGINT", 15, 0, "ppl", 3.0)
    resumed = dataclasses.replace(
        start,
        kind="resume",
        restored=Restored(step=10, epoch=1, learning_rate=1e-3, best_metric="ppl", best_score=4.0),
    )
    again = GradRecord(11, 0.25, True)
    log = [start, train, valid, *later, interrupted, resumed, again]
    assert training_log.current(log) == [start, train, valid, interrupted, resumed, again]
