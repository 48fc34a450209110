"""Checkpoints: named NumPy arrays in an .npz plus a JSON manifest, written atomically, read without pickle.

A checkpoint folder holds two files:

  checkpoint-<first 16 hex digits of its sha256>.npz   the arrays, one "<name>.npy" member each
  checkpoint.json                                       the manifest, pointing at that npz

checkpoint.json, with keys sorted:
  "arrays": [{"name": "model/down.0.conv.weight", "shape": [64, 3, 3, 3], "dtype": "<f4"}, ...]
            in the order they were saved; dtype is numpy's dtype.str (byte order + kind + item size)
  "format": 1
  "meta":   the caller's dict (config, step, RNG state, ...), any JSON; Python ints of any size survive
  "npz":    "checkpoint-<16 hex>.npz"
  "sha256": hex digest of the whole npz file

Why this shape: the npz gets a new, content-derived name, so it never overwrites the file the current
manifest points at, and the manifest's atomic rename is the single commit point. A crash at any moment
leaves the previous pair or the new pair, both loadable; leftovers of pyddpm's own (an unreferenced
checkpoint-<16 hex>.npz, a temp file of pyddpm's naming) are deleted by the next successful save, except
the npz names the caller asks to keep. No other file is ever deleted. Only one process may save into a
folder at a time (a training run holds the folder's lock: pyddpm.train.run_folder).
"""

import hashlib
import json
import os
import re
import secrets
import zipfile
from pathlib import Path

import numpy as np

from pyddpm.fileio import atomic_write_json, fsync_directory

FORMAT_VERSION = 1
JSON_NAME = "checkpoint.json"
NPZ_NAME = re.compile(r"checkpoint-[0-9a-f]{16}\.npz")
# The npz is written under a temp name of this shape, hashed, then renamed to its content-derived name; a
# crash in between leaves a temp file that the next save deletes. So do the manifest's temp files
# (fileio.atomic_open's ".checkpoint.json.<16 hex>.tmp") and an older pyddpm's fixed staging name.
_STAGING = re.compile(r"\.checkpoint-staging-[0-9a-f]+\.npz\.tmp|\.checkpoint\.json\.[0-9a-f]+\.tmp"
                      r"|checkpoint-staging\.npz|\.checkpoint-staging\.npz\.[0-9a-f]+\.tmp")
# Array kinds stored: bool, signed/unsigned int, float, complex. Object arrays would need pickle; strings,
# structs and datetimes have no place among model weights and optimizer state.
_NUMERIC_KINDS = "biufc"


class CheckpointError(ValueError):
    """A checkpoint that is missing, corrupt, or not one this version of pyddpm can read."""


def find_checkpoint(directory):
    """Return the Path of the checkpoint.json in ``directory`` (or ``directory`` itself if it is a
    .json file), or None if there is none. Says nothing about whether it loads: that is load's job."""
    path = Path(directory)
    json_path = path if path.suffix == ".json" else path / JSON_NAME
    return json_path if json_path.is_file() else None


def save_checkpoint(directory, arrays, meta, keep=()):
    """Write ``arrays`` and ``meta`` as the checkpoint in ``directory`` (created if missing).

    arrays: dict name -> numpy.ndarray of a numeric dtype (bool, int, uint, float, complex), any shape
            including 0-d. Names are non-empty strings such as "model/down.0.conv.weight" or "ema/...".
    meta:   dict of JSON values; no NaN/inf, no NumPy scalars (use .item()).
    keep:   names of checkpoint-<16 hex>.npz files in ``directory`` that are not this run's and must stay.
    Raises TypeError/ValueError for bad input before anything is written. An exception part-way leaves
    the previous checkpoint in place and loadable, with no new files beside it.
    """
    _check_arrays(arrays)
    _check_meta(meta)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path = directory / JSON_NAME
    previous_npz = _referenced_npz(json_path)

    npz_name, digest = _write_npz_named_by_digest(directory, arrays)
    manifest = {
        "format": FORMAT_VERSION,
        "npz": npz_name,
        "sha256": digest,
        "arrays": [{"name": k, "shape": list(a.shape), "dtype": a.dtype.str} for k, a in arrays.items()],
        "meta": meta,
    }
    try:
        atomic_write_json(json_path, manifest)  # the commit point
    except BaseException:
        if npz_name != previous_npz:  # equal arrays give an equal name: then the file is still in use
            (directory / npz_name).unlink(missing_ok=True)
        raise

    # Committed: whatever else has our names is an older npz or a hard crash's leftover.
    for path in directory.iterdir():
        name = path.name
        ours = (NPZ_NAME.fullmatch(name) and name not in keep) or _STAGING.fullmatch(name)
        if ours and name != npz_name and path.is_file():
            path.unlink(missing_ok=True)


def load_checkpoint(directory):
    """Read the checkpoint in ``directory`` (a folder, or the path of its checkpoint.json).

    Returns (arrays, meta): arrays a dict name -> numpy.ndarray in the order they were saved, with the
    saved shapes and dtypes; meta the dict given to save_checkpoint. Never unpickles anything.
    Raises CheckpointError, naming the file, if anything is missing, corrupt or inconsistent.
    """
    json_path = _json_path(Path(directory))
    manifest = _read_manifest(json_path)
    npz_path = json_path.parent / manifest["npz"]
    try:
        # One open for both the digest and the read, so the bytes checked are the bytes loaded.
        with open(npz_path, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
            if digest != manifest["sha256"]:
                raise CheckpointError(f"{npz_path}: sha256 is {digest}, {json_path.name} expects "
                                      f"{manifest['sha256']}; the npz is corrupt or truncated")
            f.seek(0)
            arrays = _read_npz(npz_path, f)
    except FileNotFoundError:
        raise CheckpointError(f"{json_path}: refers to {npz_path.name}, which does not exist") from None
    _check_against_manifest(npz_path, arrays, manifest["arrays"])
    return arrays, manifest["meta"]


def read_checkpoint_meta(directory):
    """The meta dict of the checkpoint in ``directory`` from its manifest alone (the npz is not read, so its
    digest is not checked either). Raises CheckpointError as load_checkpoint does for the manifest."""
    return _read_manifest(_json_path(Path(directory)))["meta"]


def _check_arrays(arrays):
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict name -> numpy.ndarray, got {type(arrays).__name__}")
    for name, a in arrays.items():
        if not isinstance(name, str) or not name or "\x00" in name:  # zip cuts a name at a NUL
            raise ValueError(f"array names must be non-empty strings without NUL, got {name!r}")
        if not isinstance(a, np.ndarray):
            raise TypeError(f"arrays[{name!r}] is a {type(a).__module__}.{type(a).__name__}, not a "
                            f"numpy.ndarray (CuPy arrays: save a.get())")
        if a.dtype.kind not in _NUMERIC_KINDS:
            raise TypeError(f"arrays[{name!r}] has dtype {a.dtype}; checkpoints hold only bool, int, "
                            f"float and complex arrays ({a.dtype} would need pickle or has no place here)")


def _check_meta(meta):
    if not isinstance(meta, dict):
        raise TypeError(f"meta must be a dict, got {type(meta).__name__}")
    try:  # fail now, not after the npz is written
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise type(e)(f"meta must hold only JSON values (dict, list, str, int, float, bool, None; no "
                      f"NaN/inf; NumPy scalars via .item()): {e}") from None


def _write_npz_named_by_digest(directory, arrays):
    """Write ``arrays`` to directory/checkpoint-<sha256[:16]>.npz; return (that file name, full digest)."""
    staging = directory / f".checkpoint-staging-{secrets.token_hex(8)}.npz.tmp"
    try:
        with open(staging, "xb") as f:  # x: a name no one else holds
            _write_npz(f, arrays)
            f.flush()
            os.fsync(f.fileno())
        with open(staging, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()
        name = f"checkpoint-{digest[:16]}.npz"
        os.replace(staging, directory / name)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    fsync_directory(directory)  # the npz's name must be on disk before a manifest can point at it
    return name, digest


def _write_npz(file, arrays):
    """np.savez's format, written out here so that (1) a name can never clash with savez's own keyword
    arguments ("file", "allow_pickle"), (2) pickling is refused on the way out as well as in, and
    (3) every member has the same timestamp, so equal arrays give equal bytes and thus an equal name."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, a in arrays.items():
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, a, allow_pickle=False)


def _json_path(path):
    if path.suffix == ".json":
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint manifest")
        return path
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    if not (path / JSON_NAME).is_file():
        raise CheckpointError(f"{path}: folder holds no {JSON_NAME}, so no checkpoint")
    return path / JSON_NAME


def _referenced_npz(json_path):
    """The npz name the manifest at ``json_path`` points at, or None if there is no readable one."""
    try:
        return json.loads(json_path.read_text(encoding="utf-8")).get("npz")
    except (OSError, ValueError, AttributeError):
        return None


def _read_manifest(json_path):
    """Parse and shape-check checkpoint.json; return it as a dict."""
    try:
        manifest = json.loads(json_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{json_path}: not valid JSON ({e})") from None
    except OSError as e:
        raise CheckpointError(f"{json_path}: cannot be read ({e})") from None
    if not isinstance(manifest, dict) or "format" not in manifest:
        raise CheckpointError(f"{json_path}: not a pyddpm checkpoint manifest (no \"format\" key)")
    if manifest["format"] != FORMAT_VERSION:
        raise CheckpointError(f"{json_path}: checkpoint format {manifest['format']!r} is unknown; this "
                              f"pyddpm reads format {FORMAT_VERSION}")
    expected = {"npz": str, "sha256": str, "arrays": list, "meta": dict}
    for key, kind in expected.items():
        if not isinstance(manifest.get(key), kind):
            raise CheckpointError(f"{json_path}: \"{key}\" is missing or not a {kind.__name__}")
    if Path(manifest["npz"]).name != manifest["npz"] or manifest["npz"] in ("", ".", ".."):
        # A manifest only ever names a file beside itself; anything else is tampering or a bug.
        raise CheckpointError(f"{json_path}: \"npz\" must be a file name in the same folder, "
                              f"got {manifest['npz']!r}")
    for entry in manifest["arrays"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and isinstance(entry.get("shape"), list) and isinstance(entry.get("dtype"), str)):
            raise CheckpointError(f"{json_path}: malformed \"arrays\" entry {entry!r}")
    return manifest


def _read_npz(npz_path, f):
    """Every array in the open npz file ``f`` as a dict name -> ndarray, with pickling refused."""
    # np.load raises all of these for a file that is not a valid npz (or .npy, or pickle) underneath.
    bad_file = (ValueError, OSError, EOFError, zipfile.BadZipFile)
    try:
        npz = np.load(f, allow_pickle=False)
    except bad_file as e:
        raise CheckpointError(f"{npz_path}: does not open as an .npz ({e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise CheckpointError(f"{npz_path}: is a single .npy array, not an .npz archive")
    with npz:  # npz.files is in zip member order, which _write_npz made the saved order
        arrays = {}
        for name in npz.files:
            try:
                arrays[name] = npz[name]
            except bad_file as e:  # object arrays land here: "cannot be loaded when allow_pickle=False"
                raise CheckpointError(f"{npz_path}: array {name!r} does not load without pickle "
                                      f"or is damaged ({e})") from None
    return arrays


def _check_against_manifest(npz_path, arrays, entries):
    """Raise CheckpointError unless ``arrays`` has exactly the names, shapes and dtypes listed."""
    listed = [e["name"] for e in entries]
    if sorted(listed) != sorted(arrays):
        missing = sorted(set(listed) - set(arrays))
        extra = sorted(set(arrays) - set(listed))
        raise CheckpointError(f"{npz_path}: arrays do not match the manifest (missing {missing[:5]}, "
                              f"unlisted {extra[:5]}, {len(listed)} listed, {len(arrays)} present)")
    for e in entries:
        a = arrays[e["name"]]
        if list(a.shape) != e["shape"] or a.dtype.str != e["dtype"]:
            raise CheckpointError(f"{npz_path}: array {e['name']!r} is {a.dtype.str} {list(a.shape)}, "
                                  f"the manifest says {e['dtype']} {e['shape']}")
