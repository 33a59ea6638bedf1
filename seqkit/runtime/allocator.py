"""Process-wide memory settings, made when seqkit is imported (before torch builds its first product).
A user's own environment setting of each wins.

Training allocates and frees tensors of ever-changing shapes (every batch has its own), and the C
allocators keep what they once held: the peak is set by fragmentation as much as by live tensors (bench
workload, float32, 12 steps without huge pages: at most 391 MB of live heap inside a heap of 917 MB;
`python bench/micro.py heap MODEL_DIR`). Measurements and the settings tried and dropped:
bench/README.md, "Memory".
"""

from __future__ import annotations

import os

# oneDNN (torch's CPU kernels for bf16) caches up to 1,024 compiled products, each with its own copy of
# reordered weights, which batches of ever-changing shapes fill with copies never reused (60 bf16 steps:
# peak 2.6 GB with the default, 1.8 GB with 16, at the same speed within noise).
ONEDNN_CACHE = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
# torch puts tensors of 2 MB and more on 2 MB-aligned transparent huge pages (where the kernel offers
# them), and the large tensors stop splitting the heap into holes (60 float32 steps, with the logits
# buffer of models/softmax.py: peak 1,263 to 1,056 MB, 2,253 against 2,218 tokens/s, within noise).
TORCH_HUGE_PAGES = ("THP_MEM_ALLOC_ENABLE", "1")


def configure() -> None:
    for name, value in (ONEDNN_CACHE, TORCH_HUGE_PAGES):
        os.environ.setdefault(name, value)
