"""Running the real `seqkit` command in a subprocess, as pipelines do."""

from __future__ import annotations

import subprocess
import sys


def seqkit(*args: str, stdin: str | bytes | None = None, cwd=None) -> subprocess.CompletedProcess:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run(
        [sys.executable, "-m", "seqkit", *map(str, args)],
        input=data,
        capture_output=True,
        cwd=cwd,
        timeout=300,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """Non-zero exit, nothing on stdout, one `error:` line on stderr that names each fragment."""
    err = result.stderr.decode()
    assert result.returncode != 0, err
    assert result.stdout == b""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]
