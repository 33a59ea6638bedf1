"""Process-wide memory settings, made when seqkit is imported (before torch builds its first product).
A user's own environment setting of each wins.

Training allocates and frees tensors of ever-changing shapes (every batch has its own), and the C
allocators keep what they once held: the peak is set by fragmentation as much as by live tensors
(`python bench/micro.py heap MODEL_DIR` counts both). Measurements and the settings tried and dropped:
bench/README.md, "Memory".
"""

from __future__ import annotations

import os

# oneDNN (torch's CPU kernels for bf16) caches up to 1,024 compiled products, each with its own copy of
# reordered weights, which batches of ever-changing shapes fill with copies never reused: a cap of 16
# lowers the bf16 peak at the same speed.
ONEDNN_CACHE = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
# torch puts tensors of 2 MB and more on 2 MB-aligned transparent huge pages (where the kernel offers
# them), and the large tensors stop splitting the heap into holes: a lower float32 peak at the same speed.
TORCH_HUGE_PAGES = ("THP_MEM_ALLOC_ENABLE", "1")


def configure() -> None:
    for name, value in (ONEDNN_CACHE, TORCH_HUGE_PAGES):
        os.environ.setdefault(name, value)
