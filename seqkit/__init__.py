"""seqkit: recurrent sequence models (RNN, GRU, LSTM encoder-decoders with attention) from the shell."""

__version__ = "0.1.0"

import os

# oneDNN (torch's CPU kernels for bf16) caches up to 1,024 compiled products, each with its own copy of
# reordered weights; training's batches of ever-changing shapes fill it with copies that are never reused
# (bench workload, 60 steps: peak memory 2.6 GB with the default, 1.8 GB with 16, at the same speed
# within noise). A user's own setting wins. It must be set before torch first builds a product.
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
