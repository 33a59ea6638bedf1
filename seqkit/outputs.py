"""Where seqkit writes: output files, the directories it owns, and the lock of a run being trained.

Files. A regular file, or a path that does not exist yet, is written under a temporary name beside it and
renamed into place: a failure or a kill leaves the old file or the new one, never half of one. Anything
else (a device such as /dev/null, a FIFO, a terminal, the /dev/fd/N of a shell's `>(cmd)`) is written
through, as the shell's `>` writes: renaming over it would replace it. A symbolic link to a regular file
stays a link; the file it names is replaced.

Directories. A directory seqkit creates for its output gets a marker file, `.seqkit` (JSON: what wrote it),
and only a directory with the marker is treated as seqkit's: files are cleared or replaced in it, never
in a directory without it. A missing directory is created, an empty one adopted; a non-empty one without
the marker belongs to somebody else and is refused with one line, whatever its files are called.

Lock. A training holds an advisory `flock` on `.seqkit.lock` in its run directory for as long as it runs;
the kernel releases it when the process ends, however it ends (kill -9 too), so no lock is ever stale. A
second training of the same directory is refused, naming the process that holds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import json
import os
import re
import signal
import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from seqkit.errors import ModelDirError

MARKER = ".seqkit"
LOCK = ".seqkit.lock"


# --- files ------------------------------------------------------------------------------------------------


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to the regular file `path` so that readers see the old file or the new one, never a
    torn one. (Outputs a user names go through `write_bytes`, which also handles devices and pipes.) An
    OSError names `path`, not the temporary file."""
    with _temporary(path) as f:
        f.write(data)


def _sigterm(number, frame) -> None:
    raise SystemExit(128 + number)


@contextlib.contextmanager
def terminable() -> Iterator[None]:
    """SIGTERM (`kill`, `timeout`, a batch scheduler) and SIGHUP (a closed terminal or ssh session) inside
    the block as an exception, SystemExit 143 or 129, as Ctrl-C is one: the block's temporary files are
    removed on the way out, where the default action ended the process on the spot and left them. Only
    while such files exist: elsewhere they keep their default action, which a long native call
    (SentencePiece's training) would otherwise delay; a handler of a training's or a server's own stays
    theirs, and so does `nohup`'s ignoring of SIGHUP."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    taken = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) in (signal.SIG_DFL, None)]
    for number in taken:
        signal.signal(number, _sigterm)
    try:
        yield
    finally:
        for number in taken:
            signal.signal(number, signal.SIG_DFL)


@contextlib.contextmanager
def native_call() -> Iterator[None]:
    """Inside `terminable`, a long native call (SentencePiece's training) during which SIGTERM and SIGHUP
    take their default action again: Python's handler would run only when the call returns, minutes
    after a batch scheduler asked, which then kills the process anyway."""
    if threading.current_thread() is not threading.main_thread():  # (as in terminable: no handlers there)
        yield
        return
    ours = [s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) is _sigterm]
    for number in ours:
        signal.signal(number, signal.SIG_DFL)
    try:
        yield
    finally:
        for number in ours:
            signal.signal(number, _sigterm)


@contextlib.contextmanager
def _temporary(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside `path`, renamed onto it when the block ends without an error and removed
    when it does not (SIGTERM included)."""
    tmp = _hidden_beside(path, "tmp")
    with terminable():
        try:
            # os.open with 0o666 lets the umask decide the mode, as for any file the user creates
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as f:
                _keep_mode(path, f.fileno())
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:  # write, flush and fsync errors name no file, os.open's the temporary one
            raise OSError(e.errno, e.strerror, str(path)) from None
        finally:
            with contextlib.suppress(OSError):  # the write's own error is the one to report
                tmp.unlink(missing_ok=True)


def _hidden_beside(path: Path, kind: str) -> Path:
    """A new hidden file's name beside `path`, this process's and unique: `.NAME.PID.RANDOM.KIND`."""
    return path.with_name(f".{short_name(path)}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{kind}")


def short_name(path: Path) -> str:
    """The first 100 bytes of `path`'s name, for the names of temporary files beside it: a name near
    the system's 255 bytes leaves no room for a suffix (bytes, not characters: 語 is three)."""
    return os.fsencode(path.name)[:100].decode("utf-8", "ignore")  # (a character cut in two is dropped)


def _keep_mode(path: Path, fd: int) -> None:
    """A file that is replaced keeps its permissions (as `sed -i` keeps them): a private file made 0600
    must not come back readable by all."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    with contextlib.suppress(OSError):  # a file system without modes (vfat, some network mounts)
        os.fchmod(fd, mode)


_INHERITED = re.compile(r"/dev/(?:fd/(\d+)|std(in|out|err))|/proc/(?:self|(\d+))/fd/(\d+)")


def inherited_descriptor(path: Path) -> int | None:
    """The descriptor this process already holds that `path` names (/dev/stdout, /dev/fd/N, a shell's
    >(cmd), /proc/self/fd/N, or a link to one of them): written through the descriptor itself, never
    reopened, which would truncate a file the shell opened for appending (`>> log`) or replace it."""
    text = str(path)
    for _ in range(8):  # links to links
        match = _INHERITED.fullmatch(os.path.normpath(text))
        if match:
            fd, std, pid, proc_fd = match.groups()
            if pid is not None and int(pid) != os.getpid():
                return None
            return int(fd or proc_fd) if (fd or proc_fd) else {"in": 0, "out": 1, "err": 2}[std]
        if not os.path.islink(text):
            return None
        text = os.path.join(os.path.dirname(text), os.readlink(text))
    return None


def is_replaceable(path: Path) -> bool:
    """Whether `path` is a regular file (through any links) or does not exist yet, and no descriptor this
    process inherited: the outputs that are written by temp-and-rename. Devices, FIFOs, terminals and
    inherited descriptors are written through."""
    if inherited_descriptor(path) is not None:
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return True


def _open_through(path: Path) -> BinaryIO:
    fd = inherited_descriptor(path)
    if fd is not None:
        return os.fdopen(os.dup(fd), "wb")
    return open(path, "wb")


def write_bytes(path: Path, data: bytes) -> None:
    """An output file the user named: replaced atomically when it is a regular file (the target of a
    link to one), written through when it is a device, FIFO, terminal or inherited descriptor."""
    if is_replaceable(path):
        atomic_write(Path(os.path.realpath(path)), data)
    else:
        with _open_through(path) as f:
            f.write(data)


def check_writable(path: Path) -> None:
    """An OSError naming `path` when an output file could not be written there (a missing or read-only
    directory, a directory in its place): for a command to fail before hours of work, not after."""
    if os.path.isdir(path):
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not is_replaceable(path):
        return  # a device, FIFO or descriptor: opened when written
    target = Path(os.path.realpath(path))
    if not target.parent.is_dir():
        raise OSError(errno.ENOENT, "no such directory", str(path))
    if target.exists() and not os.access(target, os.W_OK):
        # a write-protected file: the shell's `>` is refused, while the rename that replaces it needs only
        # the directory's permission, and replaced it
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(path))
    probe = _hidden_beside(target, "check")
    try:  # as the output's temporary file will be: the system's own answer (read-only, permissions)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as e:
        raise OSError(e.errno, e.strerror, str(path)) from None
    probe.unlink()


def lines_into(f: BinaryIO, path: Path):
    """A context holding the stream that `path`'s lines are written to through `f`: gzip for a .gz name,
    as a .gz input is read (mtime 0: the same lines give the same bytes), else `f` itself."""
    if path.suffix == ".gz":
        return gzip.GzipFile(fileobj=f, mode="wb", mtime=0)
    return contextlib.nullcontext(f)


@contextlib.contextmanager
def writing(path: Path) -> Iterator[BinaryIO]:
    """A stream onto the output file `path`, for outputs too long to hold in memory: a temporary file
    renamed into place when the block ends without an error (removed when it does not), or the device,
    FIFO, terminal or inherited descriptor itself."""
    if not is_replaceable(path):
        with _open_through(path) as f:
            yield f
        return
    with _temporary(Path(os.path.realpath(path))) as f:
        yield f


# --- directories ------------------------------------------------------------------------------------------


def is_file_of(directory: Path, path: Path, names, folders=()) -> bool:
    """Whether `path` (through any links) is the file `names` name directly in `directory`, or lies
    inside one of its `folders`: a model directory's own files, which a command reading the model must
    not write its results over."""
    try:
        home, target = directory.resolve(), path.resolve()
    except OSError:
        return False
    if target.parent == home and target.name in names:
        return True
    return any(target.is_relative_to(home / folder) for folder in folders)


def owns(directory: Path) -> bool:
    """Whether seqkit created (or adopted) `directory` for an output of its own."""
    return (directory / MARKER).is_file() and not (directory / MARKER).is_symlink()


def marker_kind(directory: Path) -> str | None:
    """What seqkit wrote `directory` for (the marker's kind: "run", "export", ...); None without a readable
    marker."""
    try:
        kind = json.loads((directory / MARKER).read_text(encoding="utf-8")).get("kind")
    except (OSError, ValueError, AttributeError):
        return None
    return kind if isinstance(kind, str) else None


def marker_bytes(kind: str) -> bytes:
    from seqkit import __version__

    return json.dumps({"written_by": f"seqkit {__version__}", "kind": kind}).encode("utf-8")


# what a directory of each marker kind holds, as a refusal to write another command's output there says it
HOLDS = {
    "run": "a training run",
    "average": "an averaged model",
    "export": "an ONNX export",
    "pictures": "the pictures of plot or inspect",
}


def require_model_directory(model_dir: Path) -> None:
    """A ModelDirError unless `model_dir` is a directory (a trained model's or an export's): said before
    torch is imported, so that a mistyped path on a deployment without torch is not "install torch"."""
    if model_dir.exists() and not model_dir.is_dir():
        raise ModelDirError(
            f"{model_dir}: a file, not a model directory; give the directory `seqkit train --output` wrote"
        )
    if not model_dir.is_dir():
        raise ModelDirError(f"{model_dir}: no such model directory; train one with `seqkit train --output`")


def check_kind(directory: Path, kind: str, option: str, what: str) -> None:
    """A ModelDirError when `directory` carries seqkit's marker of another kind than `kind` (or of none
    that can be read): `claim_directory` accepts any marker, and one command's output would land among
    another's files (pictures in an export, an export in a run)."""
    if owns(directory) and (held := marker_kind(directory)) != kind:
        raise ModelDirError(
            f"{option} {directory}: holds seqkit's files of {HOLDS.get(held or '', 'another command')}, "
            f"not {what}; choose a new or empty {option}"
        )


def claim_directory(directory: Path, kind: str, option: str, adopt: bool = False) -> None:
    """Make `directory` one seqkit may write into (and clear its own files from): create it, adopt it
    when empty, accept it when it has the marker. `adopt` also accepts a non-empty directory without the
    marker (a run of seqkit 0.1, continued with an explicit --resume). Anything else is a ModelDirError
    naming `option` and what to do."""
    check_claimable(directory, option, adopt)
    if not owns(directory):
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write(directory / MARKER, marker_bytes(kind))


def check_claimable(directory: Path, option: str, adopt: bool = False) -> None:
    """`claim_directory`'s refusals, without creating anything (for a command to fail before it starts)."""
    if directory.exists() and not directory.is_dir():
        raise ModelDirError(f"{option} {directory}: exists and is not a directory; choose a new {option}")
    if owns(directory):
        return
    if directory.is_dir() and not adopt:
        names = sorted(entry.name for entry in directory.iterdir())
        if names:
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise ModelDirError(
                f"{option} {directory}: the directory holds files seqkit did not write ({shown}); "
                f"choose a new or empty {option}"
            )


# --- the lock of a run ------------------------------------------------------------------------------------

_HELD: dict[Path, int] = {}  # directory -> the lock file's descriptor, for the locks this process holds


@contextlib.contextmanager
def locked(
    directory: Path, doing: str = "trained", fix: str = "train into another --output"
) -> Iterator[None]:
    """Hold `directory`'s lock for the block; re-entrant within a process (the CLI and the trainer it calls
    both ask for it). `doing` and `fix` word the refusal when another process holds it."""
    key = directory.resolve()
    if key in _HELD:
        yield
        return
    # O_NOFOLLOW: a link in place of the lock file is refused like any other link in a run directory
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise ModelDirError(
            f"{directory} is being {doing} by another process (pid {pid}); wait for it to end, or {fix}"
        ) from None
    mine = f"{os.getpid()}\n".encode("ascii")
    try:
        os.pwrite(fd, mine, 0)  # then cut to its length: a reader never sees an empty file
        os.ftruncate(fd, len(mine))
    except OSError:  # a full disk, say: the lock is not held, and its descriptor not left open
        os.close(fd)
        raise
    _HELD[key] = fd
    try:
        yield
    finally:
        del _HELD[key]
        os.close(fd)  # releases the lock


# --- what went wrong --------------------------------------------------------------------------------------

# errno -> what the user can do about it
_FIXES = {
    errno.ENOSPC: "free space and run the same command again",
    errno.EDQUOT: "free space or raise the quota, and run the same command again",
    errno.EROFS: "choose a location on a writable file system",
    errno.EACCES: "check the permissions of the file and its directory",
    errno.EPERM: "check the permissions of the file and its directory",
    errno.EISDIR: "give a file",
    errno.ENOTDIR: "a part of the path is a file; check the path",
    errno.ENOENT: "check the path",
    errno.EEXIST: "choose another name",
    errno.ELOOP: "seqkit does not follow this link; give the file itself",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.EIO: "check the disk",
}


def describe(error: OSError, resumes: bool = False) -> str:
    """One line for an OSError: the path, the system's words, and what to do (`resumes`: the command is a
    training, which the same command continues from its last checkpoint)."""
    where = error.filename if error.filename is not None else "standard output"
    words = error.strerror or type(error).__name__
    fix = _FIXES.get(error.errno or 0, "check the path and try again")
    if resumes and error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix += " to resume from the last checkpoint"
    return f"{where}: {words}; {fix}"
