"""seqkit: recurrent sequence models (RNN, GRU, LSTM encoder-decoders with attention) from the shell."""

from importlib.metadata import PackageNotFoundError, version

from seqkit.runtime import allocator

allocator.configure()  # before torch builds its first product: it reads these settings once

try:
    __version__ = version("seqkit")  # the one version source: pyproject.toml's, as installed
except PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = "0+unknown"
