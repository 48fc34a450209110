"""One training step of a preset (forward, loss, backward, clip, Adam, EMA) on each backend, interleaved.

    python benchmarks/train_step.py [--preset digits] [--repeats 10]

Checks first that the backends compute the same first-step loss from the same state, then times.
"""

import argparse
import tempfile

from harness import format_row, time_interleaved

from pyddpm.ops.backend import available, set_backend
from pyddpm.train import Trainer, preset_config


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="digits")
    p.add_argument("--repeats", type=int, default=10)
    args = p.parse_args()
    backends = [b for b in ("numpy", "cpu") if available(b)]
    trainers, losses = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for b in backends:
            trainers[b] = Trainer(preset_config(args.preset, out=f"{tmp}/{b}", backend=b), log=lambda *_: None)
            losses[b] = trainers[b].train_step()[0]
    for b in backends:
        assert abs(losses[b] - losses["numpy"]) <= 1e-4 * abs(losses["numpy"]), f"{b} loss {losses[b]} != numpy"

    def step(b):
        def run():
            set_backend(b)
            trainers[b].train_step()
        return run
    results = time_interleaved({b: step(b) for b in backends}, repeats=args.repeats, warmup=2)
    print(format_row(f"train step, preset {args.preset}", results))


if __name__ == "__main__":
    main()
