"""seqkit: recurrent sequence models (RNN, GRU, LSTM encoder-decoders with attention, language models)
from the shell and from Python.

    import seqkit
    model = seqkit.load("runs/demo")          # a directory `seqkit train --output` wrote
    print(model.translate(["Dios es amor."])[0].text)
    model = seqkit.train("runs/tiny", "corpora/bible-es-en/demo.toml", settings={"train.max_steps": 200})

Importing seqkit changes no process-wide setting; `seqkit.load` and the command line apply seqkit's
memory settings (runtime/allocator.py).
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what type checkers see of the names `__getattr__` imports when first used
    from seqkit import errors as errors
    from seqkit.api import Model, Scores, TranslationResult
    from seqkit.decoding.classify import Prediction
    from seqkit.loading import load
    from seqkit.runs import train

try:
    __version__ = version("seqkit")  # the one version source: pyproject.toml's, as installed
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"

__all__ = ["Model", "Prediction", "Scores", "TranslationResult", "__version__", "load", "train"]


def __getattr__(name: str):
    # the API's names, imported when first used: `import seqkit` stays light (no torch) for the CLI's
    # start-up and for `seqkit --version`
    if name in ("Model", "Scores", "TranslationResult"):
        from seqkit import api

        return getattr(api, name)
    if name == "load":
        from seqkit.loading import load

        return load
    if name == "train":
        from seqkit.runs import train

        return train
    if name == "errors":  # `except seqkit.errors.DataError` after a bare `import seqkit` (no torch)
        import importlib  # (`from seqkit import errors` would ask this function again, endlessly)

        return importlib.import_module("seqkit.errors")
    if name == "Prediction":  # a classifier's or forecaster's answer for one line
        from seqkit.decoding.classify import Prediction

        return Prediction
    raise AttributeError(f"module 'seqkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__, "errors"})
