"""What a resumed run may change in its stored config, and what it keeps."""

from __future__ import annotations

from pathlib import Path

from seqkit.config import Config, checks, differences
from seqkit.errors import ConfigError

# what a resumed run keeps: its data, model and batches; the weights it started from (train.init_from is
# read at the start only); and the metric its saved best score was measured in, which a new one would
# be compared with (a best BLEU of 20 against -ppl: no later model would ever be the best)
RESUME_KEEPS = (
    "model.",
    "tokenizer.",
    "data.",
    "train.batch_tokens:",
    "train.bptt_length:",
    "train.seed:",
    "train.init_from:",
    "train.best_metric:",
)


def changes(stored: Config, new: Config, run_dir: Path) -> list[str]:
    """The changes a resume of the run in `run_dir` makes to its stored config (`section.key: old -> new`),
    or a ConfigError when one of them is a key a resumed run keeps."""
    changed = differences(stored, new)
    # a classifier's training texts are those of at most decode.max_input_pieces pieces: another limit
    # is another training set, which the saved epoch order would index wrongly
    keeps = (*RESUME_KEEPS, "decode.max_input_pieces:") if stored.model.type == "classifier" else RESUME_KEEPS
    fixed = [change for change in changed if change.startswith(keeps)]
    if checks.best_metric(stored) == checks.best_metric(new):  # "auto" -> "bleu" on a translation model
        fixed = [change for change in fixed if not change.startswith("train.best_metric:")]
    if fixed:
        raise ConfigError(
            f"{run_dir}: a resumed run keeps its data, tokenizer, model, batches, seed, starting weights and "
            f"best_metric ({'; '.join(fixed)}); train a new model with another --output (or start over in "
            f"this one: seqkit train -o {run_dir} --overwrite)"
        )
    return changed
