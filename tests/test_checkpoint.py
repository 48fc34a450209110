import hashlib
import json

import numpy as np
import pytest

from pyddpm import checkpoint, fileio
from pyddpm.checkpoint import CheckpointError, find_checkpoint, load_checkpoint, save_checkpoint


def sample_arrays(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "model/down.0.conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "model/down.0.conv.bias": rng.standard_normal(4).astype(np.float32),
        "ema/x": rng.standard_normal((2, 5)),                          # float64
        "opt/step": np.array(1234567890123, dtype=np.int64),           # 0-d
        "opt/half": rng.standard_normal((3,)).astype(np.float16),
        "data/perm": rng.permutation(10).astype(np.int32),
        "data/mask": rng.random((2, 2)) > 0.5,                         # bool
        "data/bytes": rng.integers(0, 256, (3, 2), dtype=np.uint8),
        "misc/complex": (rng.standard_normal(2) + 1j).astype(np.complex64),
        "misc/empty": np.zeros((0, 3), dtype=np.float32),
        "misc/transposed": rng.standard_normal((3, 4)).T,              # not C-contiguous
        "file": np.ones(1),  # would clash with np.savez(file, ...)'s own argument
    }


def sample_meta():
    rng = np.random.default_rng(7)
    rng.standard_normal(3)
    return {
        "step": 1000,
        "big": 2**100,
        "config": {"lr": 2e-4, "channels": [64, 128], "name": "ddpm", "flag": True, "none": None},
        "rng": rng.bit_generator.state,  # PCG64: 128-bit ints
    }


def assert_same_arrays(got, expected):
    assert list(got) == list(expected)  # the saved order comes back
    for name, a in expected.items():
        assert got[name].dtype == a.dtype and got[name].shape == a.shape, name
        np.testing.assert_array_equal(got[name], a, err_msg=name)


def saved(tmp_path, seed=0):
    """A folder holding a checkpoint of sample_arrays(seed); returns (folder, manifest dict)."""
    save_checkpoint(tmp_path, sample_arrays(seed), sample_meta())
    return tmp_path, json.loads((tmp_path / "checkpoint.json").read_text())


def names(folder):
    return sorted(p.name for p in folder.iterdir())


# ---- round trip and format -------------------------------------------------------------------------


def test_round_trip(tmp_path):
    arrays, meta = sample_arrays(), sample_meta()
    save_checkpoint(tmp_path / "a" / "b", arrays, meta)  # parent folders are created
    got_arrays, got_meta = load_checkpoint(tmp_path / "a" / "b")
    assert_same_arrays(got_arrays, arrays)
    assert got_meta == meta and got_meta["big"] == 2**100


def test_rng_state_survives_so_training_resumes_exactly(tmp_path):
    rng = np.random.default_rng(3)
    rng.standard_normal(5)
    save_checkpoint(tmp_path, {}, {"rng": rng.bit_generator.state})
    restored = np.random.default_rng()
    restored.bit_generator.state = load_checkpoint(tmp_path)[1]["rng"]
    np.testing.assert_array_equal(restored.standard_normal(4), rng.standard_normal(4))


def test_manifest_lists_arrays_and_digest(tmp_path):
    folder, manifest = saved(tmp_path)
    npz = folder / manifest["npz"]
    assert manifest["format"] == checkpoint.FORMAT_VERSION
    assert manifest["sha256"] == hashlib.sha256(npz.read_bytes()).hexdigest()
    assert npz.name == f"checkpoint-{manifest['sha256'][:16]}.npz"
    assert manifest["arrays"][3] == {"name": "opt/step", "shape": [], "dtype": "<i8"}
    assert (folder / "checkpoint.json").read_text().endswith("}\n")
    with np.load(npz, allow_pickle=False) as z:  # a plain npz: readable by numpy alone
        assert z.files == list(sample_arrays())


def test_load_accepts_the_json_path_and_find_checkpoint(tmp_path):
    assert find_checkpoint(tmp_path) is None
    assert find_checkpoint(tmp_path / "missing") is None
    saved(tmp_path)
    assert find_checkpoint(tmp_path) == tmp_path / "checkpoint.json"
    assert find_checkpoint(tmp_path / "checkpoint.json") == tmp_path / "checkpoint.json"
    assert_same_arrays(load_checkpoint(tmp_path / "checkpoint.json")[0], sample_arrays())


def test_overwrite_keeps_one_npz(tmp_path):
    saved(tmp_path, seed=0)
    _, manifest = saved(tmp_path, seed=1)
    assert names(tmp_path) == sorted(["checkpoint.json", manifest["npz"]])
    assert_same_arrays(load_checkpoint(tmp_path)[0], sample_arrays(1))


def test_saving_equal_arrays_twice_gives_the_same_file(tmp_path):
    _, first = saved(tmp_path)
    _, second = saved(tmp_path)
    assert first["npz"] == second["npz"]
    assert names(tmp_path) == sorted(["checkpoint.json", first["npz"]])
    load_checkpoint(tmp_path)


def test_leftovers_of_a_hard_crash_are_swept_by_the_next_save(tmp_path):
    for leftover in ("checkpoint-staging.npz", "checkpoint-0123456789abcdef.npz",
                     ".checkpoint.json.deadbeef.tmp", ".checkpoint-staging.npz.cafe.tmp"):
        (tmp_path / leftover).write_bytes(b"half written")
    _, manifest = saved(tmp_path)
    assert names(tmp_path) == sorted(["checkpoint.json", manifest["npz"]])


# ---- a save that fails part-way ---------------------------------------------------------------------


def fail_after_some_bytes(member, array, allow_pickle):
    member.write(b"\x93NUMPY partial")
    raise OSError("disk full (simulated)")


def test_failure_while_writing_the_npz_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    saved(tmp_path, seed=0)
    before = names(tmp_path)
    monkeypatch.setattr(np.lib.format, "write_array", fail_after_some_bytes)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path, sample_arrays(1), sample_meta())
    monkeypatch.undo()
    assert names(tmp_path) == before  # no temp, staging or new npz file
    assert_same_arrays(load_checkpoint(tmp_path)[0], sample_arrays(0))


def test_failure_while_writing_the_json_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    saved(tmp_path, seed=0)
    before = names(tmp_path)

    def crash(path, text):
        with fileio.atomic_open(path, "w") as f:
            f.write(text[:10])
            raise KeyboardInterrupt  # even a Ctrl-C mid-write leaves things tidy

    monkeypatch.setattr(fileio, "atomic_write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, sample_arrays(1), sample_meta())
    monkeypatch.undo()
    assert names(tmp_path) == before
    assert_same_arrays(load_checkpoint(tmp_path)[0], sample_arrays(0))


def test_a_failed_first_save_leaves_an_empty_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(np.lib.format, "write_array", fail_after_some_bytes)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path, sample_arrays(), {})
    assert names(tmp_path) == []
    assert find_checkpoint(tmp_path) is None


# ---- bad input to save ------------------------------------------------------------------------------


@pytest.mark.parametrize("arrays, error, match", [
    ({"a": np.array([1, "x"], dtype=object)}, TypeError, "dtype object"),
    ({"a": np.array(["text"])}, TypeError, "dtype <U4"),
    ({"a": [1.0, 2.0]}, TypeError, "not a numpy.ndarray"),
    ({"": np.zeros(1)}, ValueError, "non-empty strings"),
    ({3: np.zeros(1)}, ValueError, "non-empty strings"),
    ({"a\x00b": np.zeros(1)}, ValueError, "without NUL"),
    ([np.zeros(1)], TypeError, "must be a dict"),
])
def test_bad_arrays_are_rejected_before_writing(tmp_path, arrays, error, match):
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path, arrays, {})
    assert names(tmp_path) == []


@pytest.mark.parametrize("meta, error, match", [
    ({"loss": float("nan")}, ValueError, "no NaN"),
    ({"loss": np.float32(0.5)}, TypeError, r"\.item\(\)"),
    ([1, 2], TypeError, "must be a dict"),
])
def test_bad_meta_is_rejected_before_writing(tmp_path, meta, error, match):
    with pytest.raises(error, match=match):
        save_checkpoint(tmp_path, {"a": np.zeros(1)}, meta)
    assert names(tmp_path) == []


# ---- damaged checkpoints ----------------------------------------------------------------------------


def rewrite_manifest(folder, **changes):
    path = folder / "checkpoint.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def replace_npz(folder, manifest, data):
    """Put ``data`` in place of the npz and make the manifest's digest match it."""
    (folder / manifest["npz"]).write_bytes(data)
    rewrite_manifest(folder, sha256=hashlib.sha256(data).hexdigest())


def test_missing_folder_and_json(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        load_checkpoint(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="holds no checkpoint.json"):
        load_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="no such checkpoint manifest"):
        load_checkpoint(tmp_path / "checkpoint.json")


def test_missing_npz(tmp_path):
    folder, manifest = saved(tmp_path)
    (folder / manifest["npz"]).unlink()
    with pytest.raises(CheckpointError, match=f"{manifest['npz']}, which does not exist"):
        load_checkpoint(folder)


@pytest.mark.parametrize("damage", ["truncate", "flip a byte"])
def test_corrupt_npz_fails_the_digest(tmp_path, damage):
    folder, manifest = saved(tmp_path)
    npz = folder / manifest["npz"]
    data = bytearray(npz.read_bytes())
    if damage == "truncate":
        data = data[:len(data) // 2]
    else:
        data[len(data) // 2] ^= 0x01
    npz.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{npz.name}: sha256 .* corrupt or truncated"):
        load_checkpoint(folder)


@pytest.mark.parametrize("text, match", [
    ("{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    ("[1, 2]", "not a pyddpm checkpoint manifest"),
    ('{"format": 99}', "format 99 is unknown"),
    ('{"format": 1, "npz": "x.npz"}', '"sha256" is missing'),
    ('{"format": 1, "npz": "x.npz", "sha256": "", "arrays": [{"name": 1}], "meta": {}}', "malformed"),
])
def test_bad_json(tmp_path, text, match):
    saved(tmp_path)
    path = tmp_path / "checkpoint.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(CheckpointError, match=match) as info:
        load_checkpoint(tmp_path)
    assert "checkpoint.json" in str(info.value)


def test_npz_name_must_stay_in_the_folder(tmp_path):
    saved(tmp_path)
    rewrite_manifest(tmp_path, npz="../elsewhere.npz")
    with pytest.raises(CheckpointError, match="file name in the same folder"):
        load_checkpoint(tmp_path)


def test_npz_that_does_not_open(tmp_path):
    folder, manifest = saved(tmp_path)
    replace_npz(folder, manifest, b"this is not a zip file at all")
    with pytest.raises(CheckpointError, match="does not open as an .npz"):
        load_checkpoint(folder)


@pytest.mark.parametrize("entry_change, match", [
    ({"shape": [9, 9]}, r"manifest says <f4 \[9, 9\]"),
    ({"dtype": "<f8"}, r"manifest says <f8"),
    ({"name": "renamed"}, r"missing \['renamed'\]"),
])
def test_arrays_must_match_the_manifest(tmp_path, entry_change, match):
    folder, manifest = saved(tmp_path)
    entries = manifest["arrays"]
    entries[0] = {**entries[0], **entry_change}
    rewrite_manifest(folder, arrays=entries)
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(folder)


# ---- never unpickle ---------------------------------------------------------------------------------

UNPICKLED = []


def _record_unpickling():
    UNPICKLED.append(True)
    return "payload"


class Trap:
    """Unpickling a Trap calls _record_unpickling, so any unpickle shows up in UNPICKLED."""

    def __reduce__(self):
        return (_record_unpickling, ())


def test_object_array_in_a_hand_made_npz_is_refused_not_unpickled(tmp_path):
    folder, manifest = saved(tmp_path)
    hostile = folder / "hostile.npz"
    np.savez(hostile, a=np.zeros(1), trap=np.array([Trap()], dtype=object))  # pickles Trap
    # The manifest is made to match exactly, so only the refusal to unpickle stands in the way.
    rewrite_manifest(folder, arrays=[{"name": "a", "shape": [1], "dtype": "<f8"},
                                     {"name": "trap", "shape": [1], "dtype": "|O"}])
    replace_npz(folder, manifest, hostile.read_bytes())
    with pytest.raises(CheckpointError, match="'trap' does not load without pickle"):
        load_checkpoint(folder)
    assert UNPICKLED == []


def test_pickled_file_in_place_of_the_npz_is_refused(tmp_path):
    import pickle

    folder, manifest = saved(tmp_path)
    replace_npz(folder, manifest, pickle.dumps(Trap()))
    with pytest.raises(CheckpointError, match="does not open as an .npz"):
        load_checkpoint(folder)
    assert UNPICKLED == []


# ---- fileio, which the guarantees above rest on --------------------------------------------------------


def test_atomic_open_replaces_only_on_success(tmp_path):
    target = tmp_path / "deep" / "file.txt"
    fileio.atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with fileio.atomic_open(target, "w") as f:
            f.write("new, half written")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert names(target.parent) == ["file.txt"]
    fileio.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"


def test_atomic_write_json_format(tmp_path):
    fileio.atomic_write_json(tmp_path / "x.json", {"b": 2**70, "a": [1.5]})
    expected = '{\n  "a": [\n    1.5\n  ],\n  "b": 1180591620717411303424\n}\n'
    assert (tmp_path / "x.json").read_text() == expected
    with pytest.raises(ValueError):
        fileio.atomic_write_json(tmp_path / "nan.json", {"x": float("nan")})
    assert names(tmp_path) == ["x.json"]
