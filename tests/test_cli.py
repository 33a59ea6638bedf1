"""The command line itself: --version, -h."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tests.helpers import seqkit, seqkit_here


def test_version_prints_the_installed_version():
    result = seqkit("--version")  # the real command: what a user or a bug report sees
    assert result.returncode == 0 and result.stderr == b""
    assert result.stdout.decode() == f"seqkit {version('seqkit')}\n"


@pytest.mark.parametrize("command", [[], ["train"], ["translate"], ["generate"], ["evaluate"], ["info"]])
def test_h_is_help(command):
    long = seqkit_here(*command, "--help")
    short = seqkit_here(*command, "-h")
    assert long.returncode == short.returncode == 0
    assert short.stdout == long.stdout and b"Usage: seqkit" in long.stdout
    assert short.stderr == long.stderr == b""
