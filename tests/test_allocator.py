"""Process-wide memory settings (seqkit/runtime/allocator.py): made by `seqkit.load` and the CLI (not on
import), a user's own setting wins, and
torch's large tensors land on transparent huge pages where the kernel offers them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SETTINGS = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "THP_MEM_ALLOC_ENABLE")


def _python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    result = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_load_and_the_command_line_set_the_defaults_and_a_users_setting_wins():
    """Importing seqkit sets nothing; `seqkit.load` (as the CLI's `main`) applies the settings."""
    show = (
        "import os, seqkit; names = ('ONEDNN_PRIMITIVE_CACHE_CAPACITY', 'THP_MEM_ALLOC_ENABLE'); "
        "before = [os.environ.get(n) for n in names]\n"
        # (a directory that is no model: loading gets as far as the settings, then fails)
        "try: seqkit.load('/')\nexcept Exception: pass\n"
        "print(*before, *[os.environ[n] for n in names])"
    )
    assert _python(show) == "None None 16 1"
    assert _python(show, ONEDNN_PRIMITIVE_CACHE_CAPACITY="1024", THP_MEM_ALLOC_ENABLE="0") == "1024 0 1024 0"
    # the command line: `seqkit config` run through the CLI's entry point (its TOML first on stdout)
    command = (
        "import os, sys; from seqkit.cli import main; sys.argv = ['seqkit', 'config']\n"
        "try: main()\nexcept SystemExit: pass\n"
        "print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'], os.environ['THP_MEM_ALLOC_ENABLE'])"
    )
    assert _python(command).splitlines()[-1] == "16 1"
    assert _python(command, THP_MEM_ALLOC_ENABLE="0").splitlines()[-1] == "16 0"


def _kernel_offers_huge_pages() -> bool:
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    # "[madvise]": torch's setting is what asks for them; under "[always]" a tensor gets them without it
    return sys.platform == "linux" and setting.exists() and "[madvise]" in setting.read_text()


@pytest.mark.skipif(
    not _kernel_offers_huge_pages(),
    reason="the kernel gives transparent huge pages on request only under [madvise]",
)
def test_large_tensors_land_on_huge_pages_after_import_and_not_without():
    allocate = (
        "import torch, {module}; {module}.configure(); x = torch.ones(64 * 2**20 // 4); "
        "print(next(int(l.split()[1]) for l in open('/proc/self/smaps_rollup') if l.startswith('AnonHugePages')))"
    )
    configured = allocate.format(module="seqkit.runtime.allocator").replace(
        "import torch, seqkit.runtime.allocator; seqkit.runtime.allocator.configure()",
        "import torch; import seqkit.runtime.allocator as allocator; allocator.configure()",
    )
    assert int(_python(configured)) >= 32 * 1024  # kB: most of the 64 MB tensor
    assert int(_python(allocate.format(module="os").replace("os.configure(); ", ""))) < 32 * 1024
