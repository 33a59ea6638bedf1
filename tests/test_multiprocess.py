"""Outgrowing one machine: a file translated by the two processes torchrun starts equals the file
translated by one, byte for byte. (torchrun itself: test_distributed.py.)"""

from __future__ import annotations

import os
import threading

from tests.helpers import assert_one_line_error, seqkit_here, torchrun_workers


def test_sharded_translation_equals_one_process_byte_for_byte(tmp_path, reverse_model, reverse_data):
    source = tmp_path / "source.txt"
    text = open(f"{reverse_data}/dev.src").read().splitlines()
    source.write_text("\n".join([*text[:25], "", *text[25:40]]) + "\n")  # 41 lines, one empty: unequal shares
    single = seqkit_here("translate", reverse_model, source, "-o", tmp_path / "one.txt")
    assert single.returncode == 0, single.stderr.decode()
    out = tmp_path / "sharded.txt"
    # the two workers of `torchrun --standalone --nproc-per-node 2 -m seqkit translate ...`, with their
    # environment
    arguments = ["translate", reverse_model, source, "-o", out]
    for code, err in torchrun_workers([arguments, arguments]):
        assert code == 0, err.decode()
    assert out.read_bytes() == (tmp_path / "one.txt").read_bytes()
    assert len(out.read_text().splitlines()) == 41
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no part left


def test_a_failing_process_names_the_input_line_and_no_part_is_left(tmp_path, reverse_model):
    source = tmp_path / "source.txt"
    source.write_text("c a b\n" * 4 + "a b " * 600 + "\n" + "b a\n" * 3)  # line 5 is too long
    out = tmp_path / "sharded.txt"
    arguments = ["translate", reverse_model, source, "-o", out, "--max-input-pieces", "100"]
    errors = []
    for code, err in torchrun_workers([arguments, arguments]):  # neither waits for the other at a barrier
        assert code == 1, err.decode()
        errors.append(err.decode().strip().splitlines()[-1])
    # line 5 is the third line of the first process's share (lines 1, 3, 5, ...)
    assert errors[0].startswith(f"error: {source}:5 has 2,400 pieces"), errors
    assert (
        errors[1]
        == f"error: --output {out}: not written, as 1 of the 2 processes failed (its error is on stderr too)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source.txt"]  # no output, no part left


def test_sharded_translation_needs_files_and_an_output(reverse_model, monkeypatch):
    # torchrun's environment, as its second process sees it: the check comes before any process group
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    assert_one_line_error(
        seqkit_here("translate", reverse_model, stdin="a b\n"),
        "under torchrun, translate shares out the lines of input files into one --output FILE",
    )


def test_sharded_translation_refuses_a_pipe_among_its_inputs(tmp_path, reverse_model, monkeypatch):
    # every process read the same stream and kept a share of what it got: the output lost lines, exit 0
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    source, fifo = tmp_path / "source.txt", tmp_path / "lines.fifo"
    source.write_text("a b\n")
    os.mkfifo(fifo)  # (nothing opens it: the check comes before any input is read)
    for pipe in ("-", fifo, "/dev/fd/63", "/proc/self/fd/63"):
        assert_one_line_error(
            seqkit_here("translate", reverse_model, source, pipe, "-o", tmp_path / "out.txt", stdin="a b\n"),
            f"{pipe}: under torchrun every process reads each input, and a pipe or stream would give each "
            "only a part of its lines; write it to a file first (or translate without torchrun)",
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lines.fifo", "source.txt"]
    # one process reads a pipe whole: it is refused only for processes that share it
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name)
    alone = seqkit_here("translate", reverse_model, source, "-", "--beam-size", 1, stdin="c a b\n")
    assert alone.returncode == 0 and len(alone.stdout.decode().splitlines()) == 2, alone.stderr
    writer = threading.Thread(target=lambda: fifo.write_text("c a b\n"))
    writer.start()
    through_a_fifo = seqkit_here("translate", reverse_model, fifo, "--beam-size", 1)
    writer.join()
    assert through_a_fifo.stdout == alone.stdout.decode().splitlines(keepends=True)[1].encode()


def test_a_part_lies_beside_a_file_and_in_the_temporary_directory_for_a_device(tmp_path):
    import tempfile
    from pathlib import Path

    from seqkit.decoding import sharded

    # beside the output: on a multi-node run, the shared file system every node writes its parts to
    assert sharded.part_path(tmp_path / "out.txt", 1) == tmp_path / ".out.txt.part-1.tmp"
    assert sharded.part_path(Path("/dev/null"), 0).parent == Path(tempfile.gettempdir())


def test_a_part_stopped_while_written_is_removed(tmp_path):
    from types import SimpleNamespace

    import pytest

    from seqkit.decoding import sharded

    def stopped():
        yield "first"
        raise KeyboardInterrupt  # (Ctrl-C, SIGTERM's SystemExit: no Exception the caller cleans up after)

    with pytest.raises(KeyboardInterrupt):
        sharded.write_part(tmp_path / "out.txt", SimpleNamespace(rank=1, size=2), stopped())
    assert list(tmp_path.iterdir()) == []
