"""Writing files atomically: a temporary file in the same folder, then a rename, so a reader
(or a crash) sees the old file or the new one, never half of one. Used for drawings, stepper
pages, models, histories and plots.

A temporary file is named ``.STEM.PID.XXXXXXXX.tmp.SUFFIX`` (``PID`` the writer's process id),
so that the next run in the folder can tell one a killed writer left behind (its process is
gone) from one another writer is filling now: :func:`remove_stale_temporaries`."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it is renamed to
    ``path``, on failure it is removed. The file gets the permissions a newly created file
    would (the umask), not the owner-only ones of a temporary file. Missing folders are made."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.{os.getpid()}.",
                                suffix=f".tmp{path.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`). Returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(path)


_TEMPORARY = re.compile(r"\..*\.(?P<pid>[0-9]+)\.[a-z0-9_]{8}\.tmp(\.[^.]*)?")
"""The names :func:`atomic_path` gives (``mkstemp``'s 8 random characters)."""


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` in ``folder`` whose writer is no
    longer running (a run killed while it wrote), and return their paths.

    Only names of the writer's own pattern are touched, and only when their process id is
    not a live process on this machine (a live one, or one of another user, is left alone).
    Does nothing on Windows, where a process cannot be probed without a handle. A file that
    cannot be removed is left.
    """
    removed: list[Path] = []
    if os.name == "nt" or not Path(folder).is_dir():
        return removed
    for entry in Path(folder).iterdir():
        match = _TEMPORARY.fullmatch(entry.name)
        if match is None or not entry.is_file() or entry.is_symlink() or _running(int(match["pid"])):
            continue
        try:
            entry.unlink()
            removed.append(entry)
        except OSError:
            pass
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: no signal is sent, only whether the process exists
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # it exists but is another user's, or cannot be probed: leave its files
    return True
