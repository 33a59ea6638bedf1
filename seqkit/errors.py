"""User-facing errors. Each message names the file, line or option at fault and how to fix it.

The CLI catches `SeqkitError` once and prints it as one line; anything else is a bug.
"""

import json
import re
import signal
from pathlib import Path


class SeqkitError(Exception):
    """An error caused by the user's input, not by seqkit."""


class ConfigError(SeqkitError):
    """A bad configuration file, key, value or command-line option."""


class DataError(SeqkitError):
    """Unreadable, missing or inconsistent text files."""


class ModelDirError(SeqkitError):
    """A model directory that is missing, incomplete or damaged."""


class TrainingError(SeqkitError):
    """Training cannot go on (e.g. the loss stays non-finite); the message says what to change."""


class TrainingInterrupted(Exception):  # noqa: N818 (no error: what the caller asked for, done)
    """SIGINT, SIGTERM or SIGHUP arrived; the current step was finished and a checkpoint saved."""

    def __init__(self, signal_number: int, step: int):
        super().__init__(signal.Signals(signal_number).name)
        self.signal_number, self.step = signal_number, step


# an export's description (export/layout.py's DESCRIPTION; named here for the refusal below, and for
# modeldir.py, which tells an export from a run without importing the export package)
EXPORT_DESCRIPTION = "export.json"
# an export's task (its description's "task") -> the commands besides serve, info and seqkit.load that run it
EXPORT_COMMANDS = {"translate": "translate", "generate": "generate", "predict": "predict, evaluate --data"}


def an_export_where_a_trained_model_is_needed(model_dir) -> ModelDirError:
    """The refusal of an ONNX export by a command that needs the trained model (modeldir's check, and the
    export runtime's, which runs before torch is imported)."""
    try:  # (a damaged or missing description is named by the commands that read it)
        task = json.loads((Path(model_dir) / EXPORT_DESCRIPTION).read_text(encoding="utf-8"))["task"]
        commands = EXPORT_COMMANDS[task]
    except (OSError, ValueError, UnicodeDecodeError, TypeError, KeyError):
        commands = "translate, generate, predict"
    return ModelDirError(
        f"{model_dir} is an ONNX export, which {commands}, serve, info and seqkit.load run; this needs the "
        "trained model directory it was exported from (export.json names it: source)"
    )


TRAINING_MEMORY_FIX = "a smaller model (model.*_size, tokenizer.vocab_size) or a smaller train.batch_tokens"


def out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocation that failed: Python's MemoryError, torch's CPU allocator
    ("can't allocate memory") or a GPU's torch.OutOfMemoryError."""
    return isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError)
        and ("can't allocate memory" in str(error) or type(error).__name__ == "OutOfMemoryError")
    )


def memory_message(error: BaseException, fix: str) -> str:
    """One line for an allocation that failed (it was a traceback of about 60 lines): how much was asked
    for, where the allocator says, and `fix`, what makes it smaller."""
    asked = re.search(r"allocate (\d+) bytes", str(error))
    gib = int(asked.group(1)) / 2**30 if asked else 0.0
    size = f" ({gib:,.{1 if gib < 10 else 0}f} GiB asked for at once)" if asked else ""
    return f"out of memory{size}; this machine needs {fix}"
