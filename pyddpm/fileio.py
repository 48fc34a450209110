"""Atomic file writes: a reader of the target path sees the old file or the new one, never half of either.

Each write goes to a temp file in the target's own directory (os.replace is only atomic within one file
system), is flushed and fsynced, then renamed over the target; the directory is fsynced after the rename
so the new name survives a power cut too. On any exception the temp file is removed and the target is
untouched. Temp files are named ".<target name>.<random hex>.tmp", so a hard crash (kill -9, power
loss) can leave one behind but never a truncated target.
"""

import contextlib
import json
import os
import secrets
from pathlib import Path


def fsync_directory(directory):
    """Make renames and deletions inside ``directory`` durable (POSIX); a no-op on Windows."""
    if os.name == "nt":  # Windows cannot open a directory as a file; its renames are journaled anyway
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path, mode="wb"):
    """Yield a file object whose content replaces ``path`` only if the ``with`` block finishes.

    mode is "wb" (bytes) or "w" (text, UTF-8, "\\n" line ends). Missing parent directories are created.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_open mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL: never clobber someone else's file; 0o666 lets the umask decide the final permissions as
    # for a plain open() (tempfile.mkstemp would leave the checkpoint readable by its owner only).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    text = {} if mode == "wb" else {"encoding": "utf-8", "newline": "\n"}
    try:
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def atomic_write_bytes(path, data):
    """Atomically replace ``path`` with ``data`` (bytes-like)."""
    with atomic_open(path, "wb") as f:
        f.write(data)


def atomic_write_text(path, text):
    """Atomically replace ``path`` with ``text``, UTF-8 encoded."""
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_write_json(path, obj):
    """Atomically replace ``path`` with ``obj`` as JSON: sorted keys, indent 2, a trailing newline.

    NaN and infinities are refused (ValueError) rather than written as the non-JSON tokens NaN/Infinity
    that other readers reject. ``obj`` is serialised before the file is opened, so a TypeError for an
    unserialisable value leaves nothing behind.
    """
    text = json.dumps(obj, sort_keys=True, indent=2, allow_nan=False) + "\n"
    atomic_write_text(path, text)


def append_json_line(path, obj, sync=False):
    """Append ``obj`` as one line of JSON to ``path`` (a .jsonl log); with sync, fsync it before returning."""
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")
        if sync:
            f.flush()
            os.fsync(f.fileno())


def check_output_file(path, flag):
    """Raise ValueError, naming ``flag``, unless a file can be written at ``path``: checked before a long
    computation, so the work is not thrown away at the end. Missing parent folders are fine (they are made)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a folder; give a file name (e.g. {path / 'out'}{path.suffix})")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: the folder {parent} is not writable")
