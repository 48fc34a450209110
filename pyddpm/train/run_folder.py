"""A run folder belongs to one run: a lock held for the run's life, and no file of anyone else's touched.

A training run writes checkpoint.json and its npz (pyddpm.checkpoint), log.jsonl and samples/, and
holds .pyddpm.lock for as long as it runs. A second run on the same folder is refused while the first
holds the lock (the message names its PID). A new run refuses a folder holding files that look like
another run's, unless told force=True: then the files it would replace (log.jsonl, samples/) are moved
aside under a free name, never deleted or overwritten, and every other file is left as it is.
"""

import os
import re
from pathlib import Path

from pyddpm.checkpoint import JSON_NAME, NPZ_NAME

LOCK_NAME = ".pyddpm.lock"
LOG_NAME = "log.jsonl"
SAMPLES_NAME = "samples"
# Names a new run writes at the top of its folder, besides the checkpoint; force moves these aside.
REPLACED = (LOG_NAME, SAMPLES_NAME)
_EVAL = re.compile(r"eval_\w+\.json")


class RunFolderError(RuntimeError):
    """The run folder is in use by another run, or holds another run's files."""


class RunLock:
    """An exclusive lock on ``folder`` (created if missing), held until release() or the process ends.

    The lock is an advisory lock on the open file folder/.pyddpm.lock, so the kernel drops it when the
    holder dies, however it dies: a crashed run never leaves its folder locked. The file holds the PID of
    the last holder, for the message a second run gets.
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise RunFolderError(f"--out {self.folder}: is a file, not a folder")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / LOCK_NAME
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _lock(fd)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunFolderError(f"--out {self.folder}: another pyddpm run (PID {holder}) is using this folder; "
                                 f"wait for it to finish, or choose another --out") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the lock
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def _lock(fd):
    """Take an exclusive, non-blocking lock on the open file ``fd``; BlockingIOError if someone holds it."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as e:
            raise BlockingIOError(str(e)) from None
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def run_files(folder):
    """The names in ``folder`` that look like a training run's output (sorted), the lock file aside."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        name = path.name
        if (name in (JSON_NAME, *REPLACED) or NPZ_NAME.fullmatch(name) or _EVAL.fullmatch(name)
                or name.startswith(".checkpoint")):
            found.append(name)
    return sorted(found)


def prepare_new_run(folder, force, log=print):
    """Check that a new run may start in ``folder`` (whose lock the caller holds); returns the names of the
    checkpoint npz files already there, which the run must keep.

    Raises RunFolderError when the folder holds files that look like another run's and force is False.
    With force, log.jsonl and samples/ are renamed aside (e.g. log.jsonl -> log.jsonl.old), never deleted.
    """
    folder = Path(folder)
    found = run_files(folder)
    if found and not force:
        shown = ", ".join(found[:6]) + (f" and {len(found) - 6} more" if len(found) > 6 else "")
        raise RunFolderError(f"--out {folder}: already holds files that look like another run's ({shown}); "
                             f"choose another --out, or pass --force to train here anyway (nothing there is "
                             f"deleted: log.jsonl and samples/ are renamed aside)")
    for name in REPLACED:
        path = folder / name
        if path.exists() or path.is_symlink():
            aside = _free_name(path)
            os.replace(path, aside)
            log(f"--force: moved {path} aside to {aside.name}")
    return frozenset(name for name in found if NPZ_NAME.fullmatch(name))


def _free_name(path):
    """path.old, or path.old2, path.old3, ...: the first that does not exist."""
    for n in range(1, 10_000):
        candidate = path.with_name(path.name + (".old" if n == 1 else f".old{n}"))
        if not (candidate.exists() or candidate.is_symlink()):
            return candidate
    raise RunFolderError(f"{path}: no free name to move it aside to")
