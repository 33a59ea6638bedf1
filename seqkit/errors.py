"""User-facing errors. Each message names the file, line or option at fault and how to fix it.

The CLI catches `SeqkitError` once and prints it as one line; anything else is a bug.
"""


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


def an_export_where_a_trained_model_is_needed(model_dir) -> ModelDirError:
    """The refusal of an ONNX export by a command that needs the trained model (modeldir's check, and the
    export runtime's, which runs before torch is imported)."""
    return ModelDirError(
        f"{model_dir} is an ONNX export, which translate, generate, serve, info and seqkit.load run; this "
        "needs the trained model directory it was exported from (export.json names it: source)"
    )
