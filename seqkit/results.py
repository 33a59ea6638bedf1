"""Results on stdout: the tables (or JSON) of `evaluate`, of a classifier's evaluation, of `info`, of an
export's description and of `info --vocab`. Logs and progress on stderr are console.py's."""

from __future__ import annotations

import json
import math
import sys

from rich import box
from rich.cells import cell_len
from rich.table import Table

from seqkit.console import METRIC_NAMES, Console, clock_text, scores_text
from seqkit.scoring.metrics import Score
from seqkit.wording import counted


def _table_out(*texts: str) -> Console:
    """stdout for a table: no markup (a system, a label or a path prints as it is: "[b]" was eaten, "[/b]"
    a traceback), and in a pipe wide enough for the longest of `texts` (rich cuts a table to 80 columns,
    which lost the end of a system's name)."""
    # (columns, not characters: a CJK character takes two)
    width = None if sys.stdout.isatty() else max(200, max(map(cell_len, texts), default=0) + 120)
    return Console(soft_wrap=True, highlight=False, markup=False, width=width)


def print_evaluation(rows: list[tuple[str, list[Score]]], perplexity: dict | None, as_json: bool) -> None:
    """Scores of each named system and/or a model's perplexity, on stdout: a table, or one JSON object
    `{"systems": [{"system": name, "scores": [...]}, ...], "perplexity": {...}}` (keys only when computed)."""
    if as_json:
        payload: dict = {}
        if rows:
            payload["systems"] = [
                {"system": name, "scores": [s.to_dict() for s in scores]} for name, scores in rows
            ]
        if perplexity:
            payload["perplexity"] = perplexity
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
        return
    if rows:
        table = Table(box=box.SIMPLE_HEAD, show_edge=False)
        table.add_column("system")
        for score in rows[0][1]:
            table.add_column(METRIC_NAMES[score.metric], justify="right")
        for name, scores in rows:
            table.add_row(name, *(f"{s.score:.2f}" for s in scores))
        _table_out(*(name for name, _ in rows)).print(table)
        for score in rows[0][1]:
            sys.stdout.write(f"{score.metric} signature: {score.signature}\n")
    if perplexity:
        bpc = f", {perplexity['bits_per_char']:.4f} bits/char" if "bits_per_char" in perplexity else ""
        sys.stdout.write(
            f"{perplexity['model']}: perplexity {perplexity['perplexity']:.3f} "
            f"({perplexity['tokens']:,} tokens, {perplexity['nll_per_token']:.4f} nats/token{bpc})\n"
        )


def _null_for_nan(value):
    """`value` with every NaN or infinite float as None: JSON has no NaN (strict parsers refuse the file),
    and a score that is not defined (MAPE over targets that are all 0) is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _null_for_nan(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_null_for_nan(item) for item in value]
    return value


def print_prediction_scores(result: dict, as_json: bool) -> None:
    """A classifier's or forecaster's evaluation on stdout: the model and its baselines side by side, then
    (a classifier) each label's precision / recall / F1 and the confusion matrix; or the whole as JSON."""
    if as_json:
        sys.stdout.write(json.dumps(_null_for_nan(result), indent=1, ensure_ascii=False) + "\n")
        return
    scores = result["scores"]
    out = _table_out(
        f"{result['model']} on {result['data']}",
        *(row["name"] for row in result["baselines"]),
        *scores.get("labels", []),
    )
    names = ("accuracy", "macro_f1") if result["kind"] == "classifier" else ("mae", "rmse", "mape")
    headings = {
        "accuracy": "accuracy",
        "macro_f1": "macro-F1",
        "mae": "MAE",
        "rmse": "RMSE",
        "mape": "MAPE %",
    }
    left_out = result.get("skipped_lines", 0)
    skipped = f"; {left_out:,} empty or unlabelled lines skipped" if left_out else ""
    table = Table(
        box=box.SIMPLE_HEAD,
        show_edge=False,
        title=f"{result['model']} on {result['data']} ({scores['examples']:,} examples{skipped})",
    )
    table.add_column("system")
    for name in names:
        table.add_column(headings[name], justify="right")
    table.add_row("model", *(f"{scores[name]:.4f}" for name in names))
    for row in result["baselines"]:
        if "skipped" in row:
            table.add_row(f"{row['name']} *", *(["-"] * len(names)))
        else:
            table.add_row(row["name"], *(f"{row[name]:.4f}" for name in names))
    out.print(table)
    # beneath the table (a reason in a column stretched it to 160 characters), each reason once
    reasons: dict[str, list[str]] = {}
    for row in result["baselines"]:
        if "skipped" in row:
            reasons.setdefault(row["skipped"], []).append(row["name"])
    for reason, names_skipped in reasons.items():
        out.print(f"* {', '.join(names_skipped)}: {reason}", highlight=False)
    if result["kind"] != "classifier":
        return
    labels = table_labels = scores["labels"]
    per_label = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for heading in ("label", "precision", "recall", "F1", "support"):
        per_label.add_column(heading, justify="left" if heading == "label" else "right")
    for label in labels:
        row = scores["per_label"][label]
        per_label.add_row(
            label,
            f"{row['precision']:.4f}",
            f"{row['recall']:.4f}",
            f"{row['f1']:.4f}",
            f"{row['support']:,}",
        )
    out.print(per_label)
    confusion = Table(
        box=box.SIMPLE_HEAD, show_edge=False, title="confusion matrix: true label down, predicted across"
    )
    confusion.add_column("true \\ predicted")
    for number in range(1, len(table_labels) + 1):
        confusion.add_column(str(number), justify="right")
    for number, (label, counts) in enumerate(zip(labels, scores["confusion"], strict=True), start=1):
        confusion.add_row(f"{number} {label}", *(str(count) for count in counts))
    out.print(confusion)


def _size(count: int) -> str:
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return ""


def print_info(info: dict, as_json: bool) -> None:
    """`seqkit info` on stdout: the layer table, totals, vocabulary, training and files, or one JSON object."""
    if as_json:
        sys.stdout.write(json.dumps(info, indent=2, ensure_ascii=False) + "\n")
        return
    # No markup: paths and pieces are printed as they are. In a pipe, room for the whole table (rich
    # would otherwise cut it to 80 columns).
    out = Console(soft_wrap=True, highlight=False, markup=False, width=None if sys.stdout.isatty() else 200)
    from seqkit.model_types import MODEL_TYPES

    kind = MODEL_TYPES[info["type"]].title
    attention = f", {info['attention']} attention" if info["attention"] else ""
    attention += ", copy attention" if info.get("copy") else ""
    attention += ", coverage" if info.get("coverage") else ""
    out.print(f"{info['model_dir']}: {info['cell'].upper()} {kind}{attention}")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("layer", "type", "output shape"):
        table.add_column(column)
    table.add_column("parameters", justify="right")
    for row in info["layers"]:
        shape = row["output_shape"] or "-"
        if row["per_step"]:
            shape += " per step"
        params = f"{row['parameters']:,}" + (f" (+ tied: {', '.join(row['tied'])})" if row["tied"] else "")
        table.add_row(row["name"], row["type"], shape, params)
    out.print(table)
    totals = info["parameters"]
    out.print(f"parameters: {totals['all']:,} ({totals['trainable']:,} trainable)")
    vocab = info["vocabulary"]
    classifier = info.get("classifier")
    if vocab is not None:  # (a classifier of numbers has none)
        sizes = (
            f"{vocab['source']:,}"
            if vocab["joint"]
            else f"{vocab['source']:,} source / {vocab['target']:,} target"
        )
        given = vocab["output_pieces"]
        output = (
            f"; the output layer gives {given:,} (the training targets)" if given < vocab["target"] else ""
        )
        out.print(
            # a classifier's tokens are its inputs alone: one vocabulary, no source and target to share it
            f"vocabulary: {vocab['tokenizer']}, {sizes}{' (joint)' if vocab['joint'] and not classifier else ''}"
            f"{output}; "
            f"first pieces: {' '.join(vocab['sample_pieces'])}"
        )
    if classifier:
        out.print(classifier_line(classifier))
    for line in training_lines(info["training"], info.get("averaged", False)):
        out.print(line)
    out.print("files: " + ", ".join(f"{name} {_size(size)}" for name, size in info["files"].items()))


def training_lines(training: dict, averaged: bool) -> list[str]:
    """The run that made a model's weights (info's "training"; an export's, of the directory it was
    exported from): its length, and the validation whose weights were saved."""
    state = f"stopped by {training['stopped_by']}" if training.get("stopped_by") else "not finished"
    lines = [
        f"training: {counted(training['steps'], 'step')} in {clock_text(training['elapsed_s'])}, "
        f"{counted(training['validations'], 'validation')}, {state}"
    ]
    best = training.get("best_validation")
    if best:
        scores = scores_text({key.removeprefix("dev_"): value for key, value in best.items()})
        if averaged:
            lines.append(
                "weights: the mean of checkpoints (seqkit average), not validated; the run's best "
                f"validation (step {best['step']:,}): {scores}"
            )
        else:
            lines.append(f"best validation (step {best['step']:,}, the saved weights): {scores}")
        for key, value in best.items():
            if key.endswith("_signature"):
                lines.append(f"  {key.removesuffix('_signature')} signature: {value}")
    return lines


def classifier_line(classifier: dict) -> str:
    """What a classifier reads and says (info's "classifier", data/encoding.py's `summary`), as one line."""
    reads = (
        "text"
        if classifier["inputs"] == "text"
        else f"{counted(classifier['features'], 'number')} per step {', '.join(classifier['columns'])}".rstrip()
    )
    if classifier.get("window"):
        reads += f", windows of {counted(classifier['window'], 'step')}"
    says = (
        f"{counted(classifier['outputs'], 'value')} (regression)"
        if classifier["head"] == "regression"
        else f"a {classifier['head']} over {counted(len(classifier['labels']), 'label')}: {', '.join(classifier['labels'][:12])}"
    )
    activation = f", {classifier['activation']} activation" if classifier["activation"] else ""
    bag = " plus a linear model of the bag of tokens" if classifier["bag_of_tokens"] else ""
    return f"reads {reads}; {classifier['pooling']} pooling{activation}{bag}; outputs {says}"


def print_export(description: dict, as_json: bool) -> None:
    """`seqkit info` of an exported directory: its description (export.json), as lines or as JSON."""
    if as_json:
        sys.stdout.write(json.dumps(description, indent=2, ensure_ascii=False) + "\n")
        return
    attention = f", {description['attention']} attention" if description.get("attention") else ""
    precision = description.get("quantized") or "fp32"
    cell = description["cell"].upper()
    article = "a" if cell == "GRU" else "an"  # (an LSTM, an RNN)
    lines = [f"ONNX export of {article} {cell} {description['title']}{attention}, {precision}, "
             f"opset {description['opset']}, from {description['source']}"]  # fmt: skip
    if "classifier" in description:
        lines.append(classifier_line(description["classifier"]))
    if "training" in description:  # (an export made before seqkit kept it does not say)
        lines += training_lines(description["training"], description.get("averaged", False))
    for graph in description["graphs"].values():
        difference = description.get("check", {}).get(graph["file"])
        int8 = description.get("check_int8", {}).get(graph["file"])
        checked = f" (largest difference from torch {difference:.1g}" if difference is not None else ""
        checked += (f"; int8: {int8:.2g})" if int8 is not None else ")") if checked else ""
        lines.append(
            f"{graph['file']}: {', '.join(graph['inputs'])} -> {', '.join(graph['outputs'])}{checked}"
        )
    sys.stdout.write("".join(line + "\n" for line in lines))


def print_vocabulary(vocab: dict, as_json: bool) -> None:
    """`seqkit info --vocab` on stdout: `id<TAB>piece<TAB>count` per line (a side's name first when the
    sides have their own vocabularies), or one JSON object."""
    if as_json:
        sys.stdout.write(json.dumps(vocab, indent=2, ensure_ascii=False) + "\n")
        return
    for side, rows in vocab["vocabulary"].items():
        prefix = "" if vocab["joint"] else f"{side}\t"
        for row in rows:
            count = "-" if row["count"] is None else str(row["count"])
            sys.stdout.write(f"{prefix}{row['id']}\t{row['piece']}\t{count}\n")
