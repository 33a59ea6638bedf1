"""Process-wide memory settings: `configure` when seqkit is imported (before torch builds its first
product), `for_training` when a training run starts. A user's own environment setting of each wins.

Training allocates and frees tensors of ever-changing shapes (every batch has its own), and the C
allocators keep what they once held: the peak is set by fragmentation as much as by live tensors
(bench workload, float32, 12 steps: 390 MB of live heap inside a 1,050 MB heap). Figures from 60-step
runs of the bench workload (2 threads, one after the other; bench/README.md, "Memory").
"""

from __future__ import annotations

import ctypes
import os
import sys

# oneDNN (torch's CPU kernels for bf16) caches up to 1,024 compiled products, each with its own copy of
# reordered weights, which batches of ever-changing shapes fill with copies never reused (60 bf16 steps:
# peak 2.6 GB with the default, 1.8 GB with 16, at the same speed within noise).
ONEDNN_CACHE = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")
# torch puts tensors of 2 MB and more on 2 MB-aligned transparent huge pages: the large tensors stop
# splitting the heap into holes (float32 peak 1,226 to 1,026 MB, speed unchanged).
TORCH_HUGE_PAGES = ("THP_MEM_ALLOC_ENABLE", "1")
# In training, glibc serves tensors of 8 MB and more (logits chunks, whole-sequence projections) from
# their own mappings instead of the heap, where their holes would be chipped by the small tensors of
# the time loop (peak 1,026 to 900 MB, about 5% slower: fresh pages are zeroed on first touch). glibc
# would otherwise raise this threshold by itself up to 32 MB. Not for decoding: beam search's 10 MB
# per-step scores would take fresh pages every step (beam 5, bench model: 13% slower).
GLIBC_MMAP_THRESHOLD = ("MALLOC_MMAP_THRESHOLD_", 8 * 2**20)
_M_MMAP_THRESHOLD = -3  # mallopt's parameter number (malloc.h)


def configure() -> None:
    for name, value in (ONEDNN_CACHE, TORCH_HUGE_PAGES):
        os.environ.setdefault(name, value)


def for_training() -> None:
    name, threshold = GLIBC_MMAP_THRESHOLD
    if sys.platform == "linux" and name not in os.environ:
        try:
            ctypes.CDLL(None).mallopt(_M_MMAP_THRESHOLD, threshold)
        except (OSError, AttributeError):  # not glibc (musl has no mallopt): its own allocator stays
            pass
