"""Reading a run folder for the report: the training log, the checkpoint's manifest, the eval JSONs and the
eval history, the newest sample grid; ReportError for what cannot be read.

Only reading, and no matplotlib: pyddpm.report.figures draws what is read here, pyddpm.report.page lays it
out, pyddpm.report.command puts the two together.
"""

import json
import math
import re
from pathlib import Path

from pyddpm.checkpoint import CheckpointError, find_checkpoint, read_checkpoint_meta
from pyddpm.evaluate import HISTORY_NAME
from pyddpm.train.run_folder import LOG_NAME, SAMPLES_NAME

# What python -m pyddpm.evaluate writes into the run folder by default (its --grid and --out).
EVAL_SAMPLES_NAME = "eval_samples.png"
EVAL_SPLITS = ("test", "train")  # the test split's numbers first: they are the ones a paper reports
GRID_NAME = re.compile(r"step(\d+)\.png")


class ReportError(ValueError):
    """A run folder (or one of its files) that cannot be reported on; the message names it."""



def read_jsonl(path):
    """The JSON objects of the lines of the file ``path``, in order; blank lines are skipped.

    A last line that is not JSON is dropped: a run killed while appending leaves one cut short. Any other
    line that is not a JSON object raises ReportError naming the file and the line number (from 1).
    """
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    records = []
    for i, (n, line) in enumerate(numbered):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if i == len(numbered) - 1:
                break
            raise ReportError(f"{path}: line {n} is not JSON ({e.msg}); fix or delete that line") from None
        if not isinstance(record, dict):
            raise ReportError(f"{path}: line {n} is not a JSON object")
        records.append(record)
    return records


def _is_number(value):
    """Whether ``value`` is a finite int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def last_per_step(records):
    """The records that have a numeric "step", the last one for each step, sorted by step: a run resumed
    from an earlier checkpoint logs its steps again, and the newer line is the one that counts."""
    by_step = {}
    for record in records:
        if _is_number(record.get("step")):
            by_step[record["step"]] = record
    return [by_step[step] for step in sorted(by_step)]


def read_log(folder):
    """The training log of the run ``folder``: last_per_step of its log.jsonl; ReportError if it has none."""
    path = Path(folder) / LOG_NAME
    if not path.is_file():
        raise ReportError(f"{folder} has no {LOG_NAME} yet: train it first (python -m pyddpm.train --out {folder})")
    return last_per_step(read_jsonl(path))


def read_json(path):
    """The JSON object in the file ``path``, or None if there is no such file; ReportError if it is not one."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: not a JSON file ({e})") from None
    if not isinstance(value, dict):
        raise ReportError(f"{path}: holds a JSON {type(value).__name__}, not an object")
    return value


def read_meta(folder):
    """The "meta" of the run's checkpoint manifest (config, step, ...), or None before the first checkpoint.
    Only the manifest is read: the arrays are not needed for a report."""
    if find_checkpoint(folder) is None:
        return None
    try:
        return read_checkpoint_meta(folder)
    except CheckpointError as e:
        raise ReportError(str(e)) from None


def read_evals(folder):
    """{split: the eval_<split>.json of the run}, for the splits that have one, test first."""
    evals = {}
    for split in EVAL_SPLITS:
        record = read_json(Path(folder) / f"eval_{split}.json")
        if record is not None:
            evals[split] = record
    return evals


def read_history(folder):
    """The records of the run's eval_history.jsonl that have a step, in file order ([] without the file)."""
    path = Path(folder) / HISTORY_NAME
    if not path.is_file():
        return []
    return [r for r in read_jsonl(path) if _is_number(r.get("step"))]


def newest_grid(folder):
    """The sample grid to show: eval_samples.png if there is one, else the samples/step<N>.png of the
    highest N (compared as numbers, so step 10000000 follows step 9999999), else None."""
    folder = Path(folder)
    if (folder / EVAL_SAMPLES_NAME).is_file():
        return folder / EVAL_SAMPLES_NAME
    grids = []
    if (folder / SAMPLES_NAME).is_dir():
        for path in (folder / SAMPLES_NAME).iterdir():
            match = GRID_NAME.fullmatch(path.name)
            if match and path.is_file():
                grids.append((int(match.group(1)), path))
    return max(grids)[1] if grids else None


def terms_of(record, name):
    """The per-timestep terms (a list of floats) of the eval record read from ``name``, or None if it has
    none; ReportError if "terms_bpd" is there but not a non-empty list of numbers."""
    terms = record.get("terms_bpd")
    if terms is None:
        return None
    if (not isinstance(terms, list) or not terms
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in terms)):
        raise ReportError(f"{name}: \"terms_bpd\" must be a non-empty list of numbers")
    return [float(v) for v in terms]
