"""seqkit: recurrent sequence models (RNN, GRU, LSTM encoder-decoders with attention) from the shell."""

__version__ = "0.1.0"

from seqkit import allocator

allocator.configure()  # before torch builds its first product: it reads these settings once
