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
from pathlib import Path

from pyddpm.command import run
from pyddpm.evaluate import HISTORY_NAME
from pyddpm.fileio import atomic_write_bytes, atomic_write_text
from pyddpm.report.figures import _figure_class, bound_figure_of, history_figure, loss_figure, png_bytes
from pyddpm.report.page import page
from pyddpm.report.runs import ReportError, newest_grid, read_evals, read_history, read_log, read_meta
from pyddpm.train.run_folder import LOG_NAME

# What this module holds: write_report (read the run, draw its pictures, write them and the page) and main
# (its command line and exit code). The docstring above is the command's --help.


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
