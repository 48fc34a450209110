"""The report's HTML page: its sections (summary, scores, config) and the whole page, with the pictures and
the sample grid embedded as data: URIs so that it stands alone. Strings only: nothing is read or drawn here.
"""

import base64
import html
import json
from pathlib import Path

from pyddpm.checkpoint import JSON_NAME
from pyddpm.metrics import METRICS
from pyddpm.report.runs import EVAL_SAMPLES_NAME, _is_number
from pyddpm.train.run_folder import LOG_NAME

# The sample metrics' rows in reading order, as the columns are in METRICS (the JSON holds both with sorted
# keys); keys not named here are shown after these.
ROW_ORDER = ("samples", "real train", "gaussian noise")

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
