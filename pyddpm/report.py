"""python -m pyddpm.report RUN: a training run folder as pictures and one self-contained HTML page.

Reads what training and ``python -m pyddpm.evaluate`` leave in RUN (checkpoint.json, log.jsonl, samples/,
eval_test.json, eval_train.json, eval_history.jsonl, eval_samples.png) and writes into RUN/report (or --out):

  loss.png         the training loss per logged step, with its moving average
  bound_terms.png  the bound's terms L_t in bits/dim against t (Eq. 5, Ho et al. 2020), from an eval JSON
                   that holds them ("terms_bpd"): which timesteps the bits are spent on
  history.png      bits/dim and the samples' Fréchet distance over training steps, one point per evaluation
  index.html       one page with everything embedded (config, pictures, sample grid, scores): it can be
                   mailed or archived alone

What the run does not have yet (a checkpoint, an evaluation, a sample grid) is said on the page in a
sentence, not raised. matplotlib is imported only where a picture is drawn, so this module imports without
it; the pictures are drawn on matplotlib Figures directly (the Agg renderer, no pyplot), so no window is
opened and no process-wide backend setting is changed.
"""

import argparse
import base64
import html
import io
import json
import math
import re
import sys
from pathlib import Path

from pyddpm.checkpoint import JSON_NAME
from pyddpm.command import run
from pyddpm.evaluate import HISTORY_NAME
from pyddpm.fileio import atomic_write_bytes, atomic_write_text
from pyddpm.metrics import METRICS
from pyddpm.train.run_folder import LOG_NAME, SAMPLES_NAME

# What python -m pyddpm.evaluate writes into the run folder by default (its --grid and --out).
EVAL_SAMPLES_NAME = "eval_samples.png"
EVAL_SPLITS = ("test", "train")  # the test split's numbers first: they are the ones a paper reports
GRID_NAME = re.compile(r"step(\d+)\.png")
# The sample metrics' rows in reading order, as the columns are in METRICS (the JSON holds both with sorted
# keys); keys not named here are shown after these.
ROW_ORDER = ("samples", "real train", "gaussian noise")
INSTALL_HINT = "pyddpm.report needs matplotlib: pip install -e '.[report]'"
DPI = 100


class ReportError(ValueError):
    """A run folder (or one of its files) that cannot be reported on; the message names it."""


# --- reading the run folder ------------------------------------------------------------------------------


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
    manifest = read_json(Path(folder) / JSON_NAME)
    if manifest is None:
        return None
    meta = manifest.get("meta")
    if not isinstance(meta, dict):
        raise ReportError(f"{Path(folder) / JSON_NAME}: has no \"meta\" object")
    return meta


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


# --- pictures --------------------------------------------------------------------------------------------


def _figure_class():
    """matplotlib's Figure class; ReportError with the install hint where matplotlib is missing."""
    try:
        # matplotlib itself first: where it is hidden (None in sys.modules), a submodule already imported
        # would otherwise still be found.
        import matplotlib
        import matplotlib.figure
    except ImportError:
        raise ReportError(INSTALL_HINT) from None
    return matplotlib.figure.Figure


def _integer_ticks(axis):
    """Ticks at whole numbers only on ``axis``: steps and timesteps have no halves."""
    from matplotlib.ticker import MaxNLocator
    axis.set_major_locator(MaxNLocator(integer=True))


def png_bytes(figure):
    """The Figure ``figure`` rendered as PNG bytes (by the Agg renderer that savefig picks for "png")."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def moving_average(values, window):
    """The means of ``values`` (a list of floats) over each run of ``window`` consecutive values:
    len(values) - window + 1 of them, the i-th ending at values[i + window - 1]."""
    sums = [0.0]
    for v in values:
        sums.append(sums[-1] + v)
    return [(sums[i + window] - sums[i]) / window for i in range(len(values) - window + 1)]


def loss_figure(log):
    """A Figure of the loss of each record of ``log`` (dicts with "step" and "loss") against its step, with
    its moving average over max(1, n // 20) points; log y axis where the loss spans more than a factor 10.
    None if no record has a finite loss."""
    points = [(r["step"], float(r["loss"])) for r in log if _is_number(r.get("loss"))]
    if not points:
        return None
    steps, losses = [p[0] for p in points], [p[1] for p in points]
    window = max(1, len(points) // 20)
    fig = _figure_class()(figsize=(7, 3.6))
    ax = fig.add_subplot()
    ax.plot(steps, losses, color="tab:blue", alpha=0.35, linewidth=1, label="loss per logged step",
            marker="." if len(points) <= 50 else None)
    ax.plot(steps[window - 1:], moving_average(losses, window), color="tab:blue", linewidth=2,
            label=f"moving average, window of {window} logged step{'s' if window > 1 else ''}")
    positive = [v for v in losses if v > 0]
    if len(positive) == len(losses) and max(positive) > 10 * min(positive):
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel("loss")
    ax.set_title(f"Training loss ({len(points)} logged steps, last at step {steps[-1]})")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return fig


def bound_terms_figure(terms, record, name):
    """A Figure of the bound's terms L_t (``terms``, bits/dim, index 0 the decoder L_0) against t on a log
    y axis, L_0 marked, the prior L_T and the total of the eval ``record`` (read from ``name``) in the title."""
    fig = _figure_class()(figsize=(7, 3.6))
    ax = fig.add_subplot()
    ts = list(range(len(terms)))
    # A KL term can round to 0 (or just below) where q and p agree; a log axis has no place for it.
    shown = [v if v > 0 else float("nan") for v in terms]
    marker = "." if len(terms) <= 100 else None
    if len(terms) > 1:
        ax.plot(ts[1:], shown[1:], color="tab:blue", marker=marker, label="$L_t$, $t \\geq 1$: KL terms")
    ax.plot([0], [shown[0]], "o", color="tab:red", markersize=7,
            label=f"$L_0$: decoder, {terms[0]:.4g} bits/dim")
    if any(v > 0 for v in terms):
        ax.set_yscale("log")
    parts = [f"{name}, step {record.get('step', '?')}"]
    if _is_number(record.get("total_bpd")):
        parts.append(f"total {record['total_bpd']:.4f} bits/dim")
    if _is_number(record.get("prior_bpd")):
        parts.append(f"prior $L_T$ = {record['prior_bpd']:.3g}")
    ax.set_title("Terms of the bound (Eq. 5): " + "; ".join(parts), fontsize=10)
    ax.set_xlabel("t (index 0 is the decoder term $L_0$)")
    _integer_ticks(ax.xaxis)
    ax.set_ylabel("bits/dim")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return fig


def bound_figure_of(evals):
    """bound_terms_figure of the test split's eval record in ``evals`` ({split: record}) if it holds the
    per-timestep terms, else the train split's; None if neither does."""
    for split in EVAL_SPLITS:
        record, name = evals.get(split), f"eval_{split}.json"
        if record is None:
            continue
        terms = terms_of(record, name)
        if terms is not None:
            return bound_terms_figure(terms, record, name)
    return None


def history_series(history):
    """From the eval history records: ({split: [(step, total bits/dim)]}, [(step, samples' FD)],
    [(step, FD of real train images)]), one point per step (the last evaluation of it), sorted by step."""
    bpd = {}
    for record in history:
        if _is_number(record.get("total_bpd")):
            bpd.setdefault(str(record.get("split", "test")), []).append(record)
    bpd = {split: [(r["step"], r["total_bpd"]) for r in last_per_step(records)] for split, records in bpd.items()}
    scored = last_per_step(r for r in history if isinstance(r.get("sample_metrics"), dict))
    fd, floor = [], []
    for record in scored:
        rows = record["sample_metrics"].get("rows") or {}
        for key, series in (("samples", fd), ("real train", floor)):
            value = (rows.get(key) or {}).get("fd")
            if _is_number(value):
                series.append((record["step"], value))
    return bpd, fd, floor


def history_figure(history):
    """A Figure of bits/dim (one line per split) and, where evaluated, the samples' FD (with the real train
    images' FD, the floor at that N, dashed) over training steps; None if the history has neither."""
    bpd, fd, floor = history_series(history)
    panels = (["bpd"] if bpd else []) + (["fd"] if fd else [])
    if not panels:
        return None
    fig = _figure_class()(figsize=(5 * len(panels), 3.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        if panel == "bpd":
            for split, points in bpd.items():
                ax.plot(*zip(*points), marker="o", label=f"{split} split")
            ax.set_ylabel("bits/dim")
            ax.set_title("Bits/dim over training")
        else:
            ax.plot(*zip(*fd), marker="o", color="tab:green", label="samples")
            if floor:
                ax.plot(*zip(*floor), marker="x", linestyle="--", color="grey", label="real train (floor)")
            ax.set_ylabel("Fréchet distance")
            ax.set_title("Samples' FD over training (lower is better)")
        ax.set_xlabel("training step")
        _integer_ticks(ax.xaxis)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


# --- the page --------------------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; }
figure { margin: 1em 0; }
.missing { color: #666; font-style: italic; }
"""


def _text(value):
    """``value`` escaped for HTML: strings as they are, everything else as JSON (true, null, 0.0002)."""
    return html.escape(value if isinstance(value, str) else json.dumps(value))


def _missing(sentence):
    """One sentence saying what the run does not have yet."""
    return f'<p class="missing">{html.escape(sentence)}</p>'


def _flatten(config, prefix=""):
    """[(dotted key, value)] of the nested dict ``config``, in its order: {"model": {"name": ...}} gives
    ("model.name", ...); an empty dict stays one row."""
    rows = []
    for key, value in config.items():
        if isinstance(value, dict) and value:
            rows += _flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def _table(header, rows):
    """An HTML table: ``header`` a list of column names, ``rows`` lists of cells, each cell either a
    string (shown escaped) or a float (shown with 4 decimals, right-aligned)."""
    def cell(value):
        if isinstance(value, float):
            return f'<td class="num">{value:.4f}</td>'
        return f"<td>{html.escape(str(value))}</td>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "\n".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _image(png, alt, caption=None):
    """An <img> holding the PNG bytes ``png`` as a data: URI, in a <figure> with an optional caption."""
    data = base64.b64encode(png).decode("ascii")
    caption = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">{caption}</figure>'


def _duration(seconds):
    """Seconds as "1h 02m 03s" (or "2m 03s", "3.2s")."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, s = divmod(int(round(seconds)), 60)
    h, m = divmod(minutes, 60)
    return f"{h}h {m:02d}m {s:02d}s" if h else f"{m}m {s:02d}s"


def summary_section(folder, meta, log):
    """The page's opening paragraph: the run's step, last loss, time trained."""
    facts = []
    if meta is not None:
        config = meta.get("config")
        steps = config.get("steps") if isinstance(config, dict) else None
        facts.append(f"checkpoint at step {meta.get('step', '?')}" + (f" of {steps}" if steps is not None else ""))
        if isinstance(meta.get("image_shape"), list):
            facts.append("images of shape " + " x ".join(str(v) for v in meta["image_shape"]))
    if log:
        last = log[-1]
        facts.append(f"{len(log)} logged steps, the last at step {last['step']}")
        if _is_number(last.get("loss")):
            facts.append(f"loss {last['loss']:.4f} there")
        if _is_number(last.get("wall_time")):
            facts.append(f"trained for {_duration(last['wall_time'])}")
        if _is_number(last.get("images_per_sec")):
            facts.append(f"{last['images_per_sec']:.0f} images/s")
    else:
        facts.append(f"{LOG_NAME} has no logged steps yet")
    return f"<p>Run <code>{html.escape(str(folder))}</code>: {html.escape('; '.join(facts))}.</p>"


def config_section(meta):
    """The run's training config as a table of setting and value, or a sentence saying there is none yet."""
    if meta is None:
        return _missing(f"No checkpoint yet, so no config: the run writes {JSON_NAME} every --ckpt-every "
                        f"steps and at its end.")
    config = meta.get("config")
    if not isinstance(config, dict):
        return _missing(f"The checkpoint's manifest ({JSON_NAME}) holds no training config.")
    rows = "\n".join(f"<tr><th>{html.escape(k)}</th><td>{_text(v)}</td></tr>" for k, v in _flatten(config))
    return f"<table>\n<thead><tr><th>setting</th><th>value</th></tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"


def scores_section(folder, evals):
    """The bits/dim table (one row per evaluated split) and each eval JSON's sample metrics table, or
    sentences saying which are missing and how to get them."""
    if not evals:
        return _missing(f"No evaluation yet: python -m pyddpm.evaluate --ckpt {folder} writes eval_test.json "
                        f"(add --samples N for the sample metrics).")
    parts = []
    bpd_rows = [[split, str(r.get("n", "?")), str(r.get("step", "?")), str(r.get("weights", "?")),
                 *(float(r[k]) if _is_number(r.get(k)) else "-"
                   for k in ("total_bpd", "prior_bpd", "decoder_bpd", "kl_bpd"))]
                for split, r in evals.items() if _is_number(r.get("total_bpd"))]
    if bpd_rows:
        parts += ["<h3>Bits/dim (negative log-likelihood bound, Eq. 5)</h3>",
                  _table(["split", "images", "step", "weights", "total", "prior L_T", "decoder L_0",
                          "sum of KL L_1..L_T-1"], bpd_rows)]
    else:
        parts.append(_missing(f"No bits/dim: the evaluation skipped the bound (--skip-bpd); "
                              f"python -m pyddpm.evaluate --ckpt {folder} computes it."))
    scored = {split: r["sample_metrics"] for split, r in evals.items() if isinstance(r.get("sample_metrics"), dict)}
    for split, metrics in scored.items():
        parts.append(metrics_table(f"eval_{split}.json", metrics))
    if not scored:
        parts.append(_missing(f"No sample metrics: python -m pyddpm.evaluate --ckpt {folder} --samples N "
                              f"adds them."))
    return "\n".join(parts)


def metrics_table(name, metrics):
    """The sample metrics block of an eval JSON (read from ``name``) as a heading and a table: one row per
    set of images (samples, then the floor and the ceiling), one column per metric."""
    rows = metrics.get("rows") if isinstance(metrics.get("rows"), dict) else {}
    names = [k for k in ROW_ORDER if k in rows] + [k for k in rows if k not in ROW_ORDER]
    keys = {k for row in rows.values() if isinstance(row, dict) for k in row}
    columns = [k for k in METRICS if k in keys] + sorted(keys - set(METRICS))
    body = [[n, *(float(rows[n][c]) if _is_number((rows[n] or {}).get(c)) else "-" for c in columns)]
            for n in names if isinstance(rows[n], dict)]
    accuracy = (metrics.get("classifier") or {}).get("test_accuracy")
    facts = [f"{metrics.get('n_samples', '?')} samples against {metrics.get('test_images', '?')} test images"]
    if _is_number(accuracy):
        facts.append(f"classifier test accuracy {100 * accuracy:.1f}%")
    note = ("fd: lower is better ('real train' is the floor at this N, 'gaussian noise' the ceiling); "
            "precision, recall, confidence: higher is better.")
    return (f"<h3>Sample metrics ({html.escape(name)})</h3>\n<p>{html.escape('; '.join(facts))}.</p>\n"
            f"{_table(['images', *columns], body)}\n<p>{html.escape(note)}</p>")


def page(folder, meta, log, evals, pictures, notes, grid):
    """The whole HTML page. pictures: [(title, png bytes)] in order; notes: sentences for the pictures that
    could not be drawn; grid: (path, png bytes) of the sample grid or None."""
    title = f"pyddpm report: {Path(folder).resolve().name}"
    body = [f"<h1>{html.escape(title)}</h1>", summary_section(folder, meta, log),
            "<h2>Scores</h2>", scores_section(folder, evals),
            "<h2>Pictures</h2>"]
    body += [_image(png, alt, alt) for alt, png in pictures]
    body += [_missing(note) for note in notes]
    body.append("<h2>Samples</h2>")
    if grid is None:
        body.append(_missing("No sample grid yet: the run draws one every --sample-every steps and at its end, "
                             "and python -m pyddpm.evaluate --samples N writes eval_samples.png."))
    else:
        path, png = grid
        what = ("samples (left) beside real test images (right)" if path.name == EVAL_SAMPLES_NAME
                else "samples drawn during training")
        body.append(_image(png, f"sample grid {path.name}", f"{path.relative_to(folder)}: {what}"))
    body += ["<h2>Config</h2>", config_section(meta)]  # last: the longest table, looked up rather than read
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


# --- the command -----------------------------------------------------------------------------------------


def write_report(folder, out=None):
    """Write the report of the run ``folder`` into ``out`` (default folder/report); returns the paths
    written, in order. Raises ReportError for a folder that is not a run yet, a corrupt file or a missing
    matplotlib; OSError where a file cannot be read or written."""
    folder = Path(folder)
    out = folder / "report" if out is None else Path(out)
    if not folder.is_dir():
        raise ReportError(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}; give a run folder "
                          f"(the --out of python -m pyddpm.train)")
    if out.exists() and not out.is_dir():
        raise ReportError(f"--out {out}: is a file, not a folder")
    log, meta, evals, history = read_log(folder), read_meta(folder), read_evals(folder), read_history(folder)
    grid_path = newest_grid(folder)
    _figure_class()  # before drawing anything, so a missing matplotlib is the first thing said

    pictures, notes, written = [], [], []
    figures = [("loss.png", "Training loss", loss_figure(log), f"{LOG_NAME} has no finite loss yet: no loss curve."),
               ("bound_terms.png", "Terms of the bound L_t against t", bound_figure_of(evals),
                "No per-timestep terms of the bound: no eval JSON holds terms_bpd (python -m pyddpm.evaluate "
                "writes them)."),
               ("history.png", "Bits/dim and FD over training", history_figure(history),
                f"No evaluation history ({HISTORY_NAME}) yet: no curves over training steps.")]
    for name, alt, figure, note in figures:
        if figure is None:
            notes.append(note)
            continue
        png = png_bytes(figure)
        atomic_write_bytes(out / name, png)
        pictures.append((alt, png))
        written.append(out / name)
    grid = None if grid_path is None else (grid_path, grid_path.read_bytes())
    atomic_write_text(out / "index.html", page(folder, meta, log, evals, pictures, notes, grid))
    written.append(out / "index.html")
    return written


def main(argv=None):
    """python -m pyddpm.report RUN [--out DIR]; returns the exit code (2 for a bad folder or file)."""
    p = argparse.ArgumentParser(prog="python -m pyddpm.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="the run folder (the --out of python -m pyddpm.train)")
    p.add_argument("--out", metavar="DIR", help="folder for the pictures and index.html (default: RUN/report)")
    args = p.parse_args(argv)
    written, code = run(lambda: write_report(args.run, args.out), (ReportError, OSError))
    if code:
        return code
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
