"""python -m pyddpm.report: a real tiny run (with and without evals, resumed, of every preset's shape) as
pictures and one self-contained HTML page; and the clear errors for what cannot be reported."""

import base64
import importlib
import io
import json
import re
import shutil
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("matplotlib", reason="pyddpm.report draws with matplotlib (pip install -e '.[report]')")

from pyddpm import report  # noqa: E402
from pyddpm.checkpoint import save_checkpoint  # noqa: E402
from pyddpm.image_grid import save_image_grid  # noqa: E402
from pyddpm.report import figures, runs  # noqa: E402
from pyddpm.train import preset_config, train  # noqa: E402

PICTURES = ("loss.png", "bound_terms.png", "history.png")
INSTALL_HINT = "pyddpm.report needs matplotlib: pip install -e '.[report]'"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A real run of the tiny preset (6 steps, sample grids at steps 3 and 6, a checkpoint, no eval yet),
    trained once for this file; tests take a copy (run_copy) so they can change it."""
    out = tmp_path_factory.mktemp("trained") / "run"
    train(preset_config("tiny", out=str(out), backend="numpy"), log=lambda *_: None)
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    """A fresh copy of the trained run in this test's tmp_path."""
    return shutil.copytree(trained, tmp_path / "run")


def sample_metrics(fd, accuracy=0.987):
    """A sample_metrics block as pyddpm.evaluate writes it (rows with sorted keys)."""
    row = dict(class_entropy=2.2222, confidence=0.8765, fd=fd, precision=0.6543, recall=0.4321)
    return {"n_samples": 16, "test_images": 2000,
            "classifier": {"test_accuracy": accuracy, "cache": "/tmp/x", "data": "digits"},
            "rows": {"gaussian noise": dict(row, fd=99.8765), "real train": dict(row, fd=3.1415),
                     "samples": row}}


def eval_record(step, timesteps, total=5.4321, split="test", metrics=True):
    """An eval_<split>.json record with the bound, its per-timestep terms and (optionally) sample metrics."""
    terms = [1.2345] + [0.5 / t for t in range(1, timesteps)]
    record = dict(total_bpd=total, prior_bpd=0.0123, decoder_bpd=1.2345, kl_bpd=4.1853, terms_bpd=terms,
                  n=8, split=split, data="digits", step=step, weights="ema", timesteps=timesteps)
    if metrics:
        record["sample_metrics"] = sample_metrics(fd=12.3456)
    return record


def add_evals(run, timesteps):
    """eval_test.json at step 6 and an eval_history.jsonl of two evaluations, at steps 3 and 6."""
    (run / "eval_test.json").write_text(json.dumps(eval_record(6, timesteps)))
    history = [dict(eval_record(3, timesteps, total=7.5), time="2025-01-01T00:00:00+00:00"),
               dict(eval_record(6, timesteps), time="2025-01-01T01:00:00+00:00")]
    (run / "eval_history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))


def write_log(run, records):
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


class PageChecker(HTMLParser):
    """Collects the tags and attributes of a page and checks that every non-void element is closed in order."""

    VOID = {"meta", "img", "br", "hr", "link", "input", "source"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.attrs, self.doctype, self.title = [], [], [], None, ""

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        self.attrs += [(tag, name, value) for name, value in attrs]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(f"</{tag}> closes nothing open")

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "title":
            self.title += data


def check_page(text):
    """Parse the page ``text``: assert it is well-formed HTML5 with a title and only data: images; returns
    the decoded PNGs it embeds, in order."""
    checker = PageChecker()
    checker.feed(text)
    checker.close()
    assert checker.doctype.lower() == "doctype html" and checker.title.strip()
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    links = [(tag, name, value) for tag, name, value in checker.attrs if name in ("src", "href")]
    assert all(tag == "img" and value.startswith("data:image/png;base64,") for tag, _, value in links), links
    assert 'src="http' not in text and "file:" not in text and "<script" not in text
    return [base64.b64decode(value.split(",", 1)[1]) for _, _, value in links]


def assert_picture(png):
    """The PNG bytes open with PIL and show a picture, not a single colour."""
    picture = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert picture.shape[0] > 50 and picture.shape[1] > 50
    assert len(np.unique(picture.reshape(-1, 3), axis=0)) > 10


def test_report_of_a_run_with_evals(run_copy, tmp_path, capsys):
    config = json.loads((run_copy / "checkpoint.json").read_text())["meta"]["config"]
    add_evals(run_copy, config["timesteps"])
    out = tmp_path / "report"
    assert report.main([str(run_copy), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in (*PICTURES, "index.html"):
        assert (out / name).is_file() and f"wrote {out / name}" in printed
    for name in PICTURES:
        assert_picture((out / name).read_bytes())

    text = (out / "index.html").read_text(encoding="utf-8")
    embedded = check_page(text)
    # The three pictures as written, then the newest sample grid of the run (no eval_samples.png here).
    assert embedded[:3] == [(out / name).read_bytes() for name in PICTURES]
    assert embedded[3] == (run_copy / "samples" / "step0000006.png").read_bytes() and len(embedded) == 4
    for key, value in [("preset", "tiny"), ("model.name", "tiny"), ("timesteps", "20"), ("lr", "0.0002"),
                       ("batch_size", "4")]:
        assert f"<th>{key}</th><td>{value}</td>" in text
    for number in ("5.4321", "0.0123", "1.2345", "4.1853", "12.3456", "3.1415", "99.8765", "0.6543", "98.7%"):
        assert number in text
    assert "No evaluation yet" not in text


def test_report_of_a_run_without_evals(run_copy, capsys):
    assert report.main([str(run_copy)]) == 0  # default --out: RUN/report
    out = run_copy / "report"
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "loss.png"]
    assert_picture((out / "loss.png").read_bytes())
    text = (out / "index.html").read_text(encoding="utf-8")
    assert len(check_page(text)) == 2  # the loss curve and the newest sample grid
    assert "No evaluation yet" in text and "No evaluation history" in text
    assert "No per-timestep terms" in text
    assert capsys.readouterr().out.split() == ["wrote", str(out / "loss.png"), "wrote", str(out / "index.html")]


def test_eval_samples_grid_is_preferred_and_skip_bpd_eval_is_reported(run_copy):
    save_image_grid(run_copy / "eval_samples.png", np.random.default_rng(0).integers(0, 256, (4, 1, 16, 16),
                                                                                     dtype=np.uint8))
    (run_copy / "eval_test.json").write_text(json.dumps({"step": 6, "sample_metrics": sample_metrics(fd=7.7777)}))
    assert report.main([str(run_copy)]) == 0
    text = (run_copy / "report" / "index.html").read_text(encoding="utf-8")
    assert check_page(text)[-1] == (run_copy / "eval_samples.png").read_bytes()
    assert "7.7777" in text and "No bits/dim" in text and not (run_copy / "report" / "bound_terms.png").exists()


@pytest.mark.parametrize("preset", ["digits", "cifar10"])
def test_report_of_each_preset(preset, tmp_path):
    """Runs of the bigger presets differ in their config, T = 1000 and image size (RGB for CIFAR-10): made
    here from the preset's config without training, at a step and log length of a real run."""
    cfg = preset_config(preset, out=str(tmp_path / "run"))
    run = tmp_path / "run"
    shape = (3, 32, 32) if preset == "cifar10" else (1, 16, 16)
    save_checkpoint(run, {"model/w": np.zeros(3, np.float32)},
                    {"config": cfg.to_dict(), "step": 5000, "image_shape": list(shape)})
    steps = range(cfg.log_every, 5001, cfg.log_every)
    write_log(run, [{"step": s, "loss": 0.03 + 1.0 / (1 + s / 50), "lr": cfg.lr} for s in steps])
    grid = np.random.default_rng(1).integers(0, 256, (cfg.n_samples, *shape), dtype=np.uint8)
    save_image_grid(run / "samples" / "step0005000.png", grid)
    (run / "eval_train.json").write_text(json.dumps(eval_record(5000, cfg.timesteps, split="train", metrics=False)))
    assert report.main([str(run)]) == 0
    out = run / "report"
    assert sorted(p.name for p in out.iterdir()) == ["bound_terms.png", "index.html", "loss.png"]
    text = (out / "index.html").read_text(encoding="utf-8")
    assert check_page(text)[-1] == (run / "samples" / "step0005000.png").read_bytes()
    assert f"<th>model.name</th><td>{preset}</td>" in text and "<th>timesteps</th><td>1000</td>" in text
    assert "No sample metrics" in text


def test_loss_figure_window_and_log_scale():
    steep = [{"step": s, "loss": 10.0 ** (-s / 50)} for s in range(1, 101)]  # spans a factor 100
    fig = figures.loss_figure(steep)
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert "window of 5 logged steps" in [t.get_text() for t in ax.get_legend().get_texts()][1]
    flat = figures.loss_figure([{"step": s, "loss": 1.0 - s / 1000} for s in range(1, 11)])
    assert flat.axes[0].get_yscale() == "linear"
    assert "window of 1 logged step" in flat.axes[0].get_legend().get_texts()[1].get_text()
    assert figures.moving_average([1.0, 2.0, 3.0, 6.0], 2) == [1.5, 2.5, 4.5]


def test_bound_terms_come_from_the_test_split_else_train():
    terms = [1.0, 0.5, 0.25, 0.0]  # a term of 0 has no place on a log axis, and must not break it
    test, train_ = (dict(terms_bpd=terms, step=6, total_bpd=1.75, prior_bpd=0.001, split=s) for s in ("test", "train"))
    fig = figures.bound_figure_of({"train": train_, "test": test})
    assert "eval_test.json" in fig.axes[0].get_title() and "0.001" in fig.axes[0].get_title()
    assert fig.axes[0].get_yscale() == "log"
    assert "eval_train.json" in figures.bound_figure_of({"train": train_}).axes[0].get_title()
    assert figures.bound_figure_of({"test": {"total_bpd": 1.0}}) is None
    with pytest.raises(runs.ReportError, match="terms_bpd"):
        figures.bound_figure_of({"test": {"terms_bpd": ["x"]}})


def test_history_keeps_the_last_evaluation_of_each_step():
    history = [{"step": 6, "split": "test", "total_bpd": 9.0}, {"step": 3, "split": "test", "total_bpd": 7.0},
               {"step": 6, "split": "test", "total_bpd": 6.0}, {"step": 6, "split": "train", "total_bpd": 5.0},
               {"step": 6, "sample_metrics": sample_metrics(fd=20.0)}]
    bpd, fd, floor = figures.history_series(history)
    assert bpd == {"test": [(3, 7.0), (6, 6.0)], "train": [(6, 5.0)]}
    assert fd == [(6, 20.0)] and floor == [(6, 3.1415)]
    assert len(figures.history_figure(history).axes) == 2
    assert figures.history_figure([{"step": 1, "n": 3}]) is None


def test_resumed_log_keeps_the_last_entry_of_each_step(run_copy):
    # Steps 4 and 6 logged, then the run resumed from its step-2 checkpoint logged them again.
    write_log(run_copy, [{"step": 2, "loss": 1.0}, {"step": 4, "loss": 0.9}, {"step": 6, "loss": 0.8},
                         {"step": 4, "loss": 0.5}, {"step": 6, "loss": 0.4}, {"step": 8, "loss": 0.3}])
    assert [(r["step"], r["loss"]) for r in runs.read_log(run_copy)] == [(2, 1.0), (4, 0.5), (6, 0.4), (8, 0.3)]
    assert report.main([str(run_copy)]) == 0
    assert "4 logged steps, the last at step 8; loss 0.3000" in (run_copy / "report" / "index.html").read_text()


def test_truncated_last_line_is_skipped(run_copy):
    with open(run_copy / "log.jsonl", "a") as f:
        f.write('{"step": 8, "loss": 0.7')  # a run killed mid-write
    assert [r["step"] for r in runs.read_log(run_copy)] == [2, 4, 6]
    assert report.main([str(run_copy)]) == 0


def test_corrupt_middle_line_names_the_file_and_line(run_copy, capsys):
    lines = (run_copy / "log.jsonl").read_text().splitlines()
    lines[1] = lines[1][:20]
    (run_copy / "log.jsonl").write_text("\n".join(lines) + "\n")
    assert report.main([str(run_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and re.search(r"log\.jsonl: line 2 is not JSON", err)
    assert not (run_copy / "report").exists()


def test_folders_that_are_not_runs_yet(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert report.main([str(tmp_path / "empty")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'empty'} has no log.jsonl yet: train it first")
    assert report.main([str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert report.main([str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_without_matplotlib(run_copy, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what `import matplotlib` meets where it is absent
    assert report.main([str(run_copy)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {INSTALL_HINT}"
    assert not (run_copy / "report").exists()
    for name in [n for n in sys.modules if n == "pyddpm.report" or n.startswith("pyddpm.report.")]:
        monkeypatch.delitem(sys.modules, name)  # the package and its modules, so each is imported afresh
    importlib.import_module("pyddpm.report")  # importing the package needs no matplotlib
