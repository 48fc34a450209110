"""The report's pictures: the training loss, the bound's terms L_t against t, bits/dim and FD over training,
each a matplotlib Figure (None where the run has nothing to draw), and png_bytes to render one.

matplotlib is imported only inside the functions that draw (by _figure_class, which says how to install it
where it is missing), so this module imports without it; the Figures are drawn directly (the Agg renderer,
no pyplot), so no window is opened and no process-wide backend setting is changed.
"""

import io

from pyddpm.report.runs import EVAL_SPLITS, ReportError, _is_number, last_per_step, terms_of

INSTALL_HINT = "pyddpm.report needs matplotlib: pip install -e '.[report]'"
DPI = 100


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
