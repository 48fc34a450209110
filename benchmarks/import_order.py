"""Does pyddpm's speed depend on what was imported before it? The digits training step through the Python
API, with pyddpm, NumPy, scikit-learn or PyTorch imported first, each in its own fresh process.

    python -m benchmarks.import_order                      # 4 variants x 3 rounds, 20 timed steps each
    python -m benchmarks.import_order --rounds 5 --steps 30 --variants pyddpm torch
    python -m benchmarks.import_order --env OMP_WAIT_POLICY=PASSIVE   # a diagnosis: extra environment

Each process imports its first library (only the import: what a script's or notebook's first line does;
importing PyTorch also loads NumPy, its libgomp and their thread pools), then does what a user of the
Python API does: ``Trainer(preset_config("digits", out=...))`` (the default backend, "auto") and
``trainer.train_step()``: batch, q_sample, forward, L_simple, backward, clip, Adam, EMA. After --warmup
steps it times --steps steps. The variants run interleaved, one process each per round, in an order
rotated every round, so drift of the machine's speed hits all alike; a process that saw other load above
--max-load (the other processes' share of all cores while it timed, /proc/stat) is run again after
--pause seconds, up to --retries times, and the table shows the highest load a kept process ran with
(rows that show load are to be rerun, not believed).

The table: each variant's median step time and the p25-p75 of all its timed steps, its ratio to the
fastest variant (the median over rounds of the round's ratio, with the rounds' range) and whether it is
within the target (10% of the best); then, per variant, which OpenMP runtime pyddpm._cpu runs on and what
pyddpm said about it. The extension's modification time is checked across processes: another build
replacing pyddpm._cpu in the middle of a run is reported, not averaged in.

The children run this file by its path, not as benchmarks.import_order, so that nothing comes before the
variant's first import: importing the benchmarks package would (benchmarks/__init__.py: OpenBLAS's thread
settings, malloc tuning, NumPy itself). So this module imports only the standard library at its top, and
the children start from the user's environment, without the variables the parent's import of the package
set for itself.
"""

import argparse
import importlib.util
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

FIRST_IMPORTS = {
    "pyddpm": "import pyddpm",
    "numpy": "import numpy",
    "sklearn": "import sklearn",
    "torch": "import torch",
}
TARGET = 1.10  # every variant within 10% of the best


# --- the child: one variant in one process ---------------------------------------------------------------
def _mapped(*needles):
    """The shared libraries mapped in this process whose file name contains one of ``needles``."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "/" in line}
    except OSError:
        return []
    return sorted(p for p in paths if any(n in os.path.basename(p) for n in needles))


def _other_load():
    """benchmarks/e2e/load.py's OtherLoad, loaded from its file: imported as benchmarks.e2e.load it would
    run benchmarks/__init__.py in the process being measured."""
    spec = importlib.util.spec_from_file_location("_load", pathlib.Path(__file__).parent / "e2e" / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.OtherLoad


def child(variant, steps, warmup):
    if "numpy" in sys.modules:  # the variant's import must be the first to load NumPy, or it measures nothing
        raise RuntimeError("NumPy was loaded before the variant's first import")
    exec(FIRST_IMPORTS[variant], {})  # first, before anything else loads NumPy or an OpenMP runtime

    import contextlib
    import io
    import tempfile

    import numpy as np

    from pyddpm.train import Trainer, preset_config
    OtherLoad = _other_load()

    said = io.StringIO()  # what pyddpm says on stderr (the backend it chose, any warning about pools)
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(said):
        trainer = Trainer(preset_config("digits", out=tmp), log=lambda *_: None)
        for _ in range(warmup):
            trainer.train_step()
        times = []
        with OtherLoad() as load:
            for _ in range(steps):
                t = time.perf_counter()
                trainer.train_step()
                times.append(1e3 * (time.perf_counter() - t))
    ext = sys.modules.get("pyddpm._cpu")
    result = dict(variant=variant, times_ms=times, other_load=load.fraction, backend=trainer.backend,
                  said=[line for line in said.getvalue().splitlines() if line.startswith("pyddpm")],
                  openmp=_mapped("libgomp", "libiomp", "libomp"), blas=_mapped("openblas", "mkl_rt"),
                  ext_mtime=os.path.getmtime(ext.__file__) if ext and getattr(ext, "__file__", None) else None,
                  numpy=np.__version__)
    try:
        import threadpoolctl
        result["pools"] = [dict(api=p["user_api"], lib=os.path.basename(p["filepath"]), threads=p["num_threads"])
                           for p in threadpoolctl.threadpool_info()]
    except ImportError:
        pass
    print("RESULT " + json.dumps(result))


# --- the parent: rounds of fresh processes, then the table ----------------------------------------------
def run_child(variant, args, env, tries=3):
    """One variant's process; a process that fails is tried again after a pause (another build or edit of
    the tree may be under way), up to ``tries`` times."""
    cmd = [sys.executable, str(pathlib.Path(__file__).resolve()), "--child", variant, "--steps", str(args.steps),
           "--warmup", str(args.warmup)]
    for attempt in range(tries):
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=args.timeout)
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode == 0 and lines:
            return json.loads(lines[-1][len("RESULT "):])
        if attempt + 1 < tries:
            print(f"{variant}: the process failed ({out.returncode}); trying again in 30 s", file=sys.stderr)
            time.sleep(30)
    raise RuntimeError(f"{variant}: the process failed ({out.returncode}):\n{out.stderr[-3000:]}")


def quantile(xs, q):
    xs = sorted(xs)
    i = q * (len(xs) - 1)
    lo, hi = int(i), min(int(i) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (i - lo)


def child_env(extra):
    """The children's environment: the user's, without the variables the parent's import of the benchmarks
    package set for itself; the ``extra`` NAME=VALUE pairs; the checkout's pyddpm first on PYTHONPATH (the
    parent runs from the repository root; a child's sys.path starts at benchmarks/, its file's folder)."""
    from benchmarks import waiting  # the parent's, imported with the package before this module ran
    env = {k: v for k, v in os.environ.items() if k not in waiting.ADDED}
    env.update(kv.split("=", 1) for kv in extra)
    root = str(pathlib.Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


def measure(args):
    env = child_env(args.env)
    rounds = []
    for r in range(args.rounds):
        order = args.variants[r % len(args.variants):] + args.variants[:r % len(args.variants)]
        results = {}
        for v in order:
            for attempt in range(args.retries + 1):
                res = run_child(v, args, env)
                res["attempts"] = attempt + 1
                if res["other_load"] is None or res["other_load"] <= args.max_load:
                    break
                if attempt < args.retries:
                    time.sleep(args.pause)  # let the other work finish rather than measure beside it
            results[v] = res
            if not args.quiet:
                print(f"round {r + 1}/{args.rounds} {v:8s} median {statistics.median(res['times_ms']):7.1f} ms"
                      f"  other load {_pct(res['other_load'])}"
                      + (f" (try {res['attempts']})" if res["attempts"] > 1 else ""),
                      file=sys.stderr, flush=True)
        rounds.append(results)
    return rounds


def _pct(x):
    return "?" if x is None else f"{100 * x:.0f}%"


def summarize(rounds, variants):
    rows = {}
    for v in variants:
        per_round = [statistics.median(r[v]["times_ms"]) for r in rounds]
        ratios = [statistics.median(r[v]["times_ms"]) / min(statistics.median(r[u]["times_ms"]) for u in variants)
                  for r in rounds]
        steps = [t for r in rounds for t in r[v]["times_ms"]]
        loads = [r[v]["other_load"] for r in rounds if r[v]["other_load"] is not None]
        last = rounds[-1][v]
        rows[v] = dict(median_ms=statistics.median(per_round), p25=quantile(steps, 0.25), p75=quantile(steps, 0.75),
                       ratio=statistics.median(ratios), ratio_lo=min(ratios), ratio_hi=max(ratios),
                       other_load=max(loads) if loads else None, backend=last["backend"], openmp=last["openmp"],
                       said=sorted({s for r in rounds for s in r[v]["said"]}), pools=last.get("pools"),
                       retried=sum(r[v]["attempts"] - 1 for r in rounds))
        rows[v]["meets"] = rows[v]["ratio"] <= TARGET
    return rows


def table(rows, args):
    lines = [f"digits training step (Python API, Trainer.train_step, batch 32), {args.rounds} rounds x "
             f"{args.steps} steps after {args.warmup} warm-up, one fresh process per variant and round"
             + (f"; extra environment: {' '.join(args.env)}" if args.env else ""), "",
             "| imported first | median step | p25-p75 | ratio to best (rounds' range) | within 10% "
             "| other load (max) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for v, r in rows.items():
        lines.append(f"| {v} | {r['median_ms']:.1f} ms | {r['p25']:.1f}-{r['p75']:.1f} ms | {r['ratio']:.2f}x "
                     f"({r['ratio_lo']:.2f}-{r['ratio_hi']:.2f}) | {'yes' if r['meets'] else 'NO'} | "
                     f"{_pct(r['other_load'])}" + (f", {r['retried']} rerun" if r["retried"] else "") + " |")
    lines.append("")
    for v, r in rows.items():
        omp = ", ".join(p.split("site-packages/")[-1] for p in r["openmp"]) or "none"
        blas = ", ".join(f"{p['lib']} {p['threads']}" for p in r["pools"] or [] if p["api"] == "blas")
        lines.append(f"{v}: backend {r['backend']}; OpenMP runtimes mapped: {omp}"
                     + (f"; BLAS threads after the steps: {blas}" if blas else "")
                     + (f"; pyddpm said: {' / '.join(r['said'])}" if r["said"] else ""))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variants", nargs="+", default=list(FIRST_IMPORTS), choices=list(FIRST_IMPORTS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=20, help="timed steps per process (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    p.add_argument("--max-load", type=float, default=0.10,
                   help="rerun a process that saw more other load than this share of all cores (default 0.10)")
    p.add_argument("--retries", type=int, default=3, help="at most this many reruns per process (default 3)")
    p.add_argument("--pause", type=float, default=20, help="seconds to wait before such a rerun (default 20)")
    p.add_argument("--env", nargs="*", default=[], metavar="NAME=VALUE", help="extra environment for the processes")
    p.add_argument("--timeout", type=float, default=600, help="seconds per process (default 600)")
    p.add_argument("--json", help="also write every process's raw result here")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--child", choices=list(FIRST_IMPORTS), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, args.steps, args.warmup)
        return 0
    missing = [v for v in args.variants if v in ("sklearn", "torch") and not _installed(v)]
    if missing:
        print(f"skipping {', '.join(missing)}: not installed (pip install torch==2.13.0 scikit-learn)", file=sys.stderr)
        args.variants = [v for v in args.variants if v not in missing]
    rounds = measure(args)
    mtimes = {r[v]["ext_mtime"] for r in rounds for v in args.variants}
    rows = summarize(rounds, args.variants)
    print(table(rows, args))
    if len(mtimes) > 1:
        print(f"\nWARNING: pyddpm._cpu changed during the run ({len(mtimes)} different builds): "
              "rerun for a clean table")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(dict(args=vars(args), rounds=rounds, rows=rows), f, indent=1)
    return 0 if all(r["meets"] for r in rows.values()) else 1


def _installed(name):
    import importlib.util
    return importlib.util.find_spec(name) is not None


if __name__ == "__main__":
    sys.exit(main())
