"""python -m pyddpm.train: train a DDPM. With no arguments, the built-in digits in a few minutes on 2 cores."""

import argparse
import json
import sys

import pyddpm
from pyddpm.checkpoint import CheckpointError
from pyddpm.data import DataError
from pyddpm.ops.backend import BackendUnavailable
from pyddpm.train.config import PRESETS, ConfigError, preset_config
from pyddpm.train.interrupts import terminate_as_interrupt
from pyddpm.train.loop import TrainingError, resumed_config, train
from pyddpm.train.run_folder import RunFolderError

# Flags that map one-to-one onto TrainConfig fields.
FIELDS = dict(data=str, steps=int, batch_size=int, lr=float, warmup=int, seed=int, sample_every=int,
              ckpt_every=int, log_every=int, n_samples=int, timesteps=int, schedule=str, mean_type=str,
              var_type=str, loss_type=str, x0_weight=str, hybrid_lambda=float, t_sampling=str, ema_decay=float,
              grad_clip=float, backend=str)
# What may change when a run is resumed; everything else is the saved run's.
RESUMABLE = {"steps", "sample_every", "ckpt_every", "log_every", "n_samples", "backend"}


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m pyddpm.train", description=__doc__)
    p.add_argument("--preset", default="digits", choices=sorted(PRESETS),
                   help="starting configuration (default: digits; tiny is a seconds-long smoke run)")
    p.add_argument("--out", help="run folder for checkpoints, log.jsonl and samples/ (default: runs/<preset>)")
    p.add_argument("--resume", action="store_true", help="continue the run saved in --out")
    p.add_argument("--force", action="store_true",
                   help="start a new run in an --out folder holding files that look like another run's "
                        "(they are kept; log.jsonl and samples/ are renamed aside)")
    p.add_argument("--model", dest="model_type", default=None, choices=["ddpm", "vae"],
                   help="ddpm (default): the diffusion; vae: the one-latent VAE baseline on the same data")
    p.add_argument("--hflip", choices=["auto", "on", "off"], default="auto",
                   help="random horizontal flips (auto: when the data allows them)")
    for name, typ in FIELDS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    pyddpm.tune_process()
    given = {k: getattr(args, k) for k in FIELDS if getattr(args, k) is not None}
    if args.model_type is not None:
        given["model_type"] = args.model_type
    if args.hflip != "auto":
        given["hflip"] = args.hflip == "on"
    try:
        if args.resume:
            out = args.out or preset_config(args.preset).out
            cfg = resumed_config(out, **{k: v for k, v in given.items() if k in RESUMABLE}, out=out)
            fixed = [k for k in sorted(set(given) - RESUMABLE) if given[k] != getattr(cfg, k)]
            if fixed:
                flag = "--model" if fixed[0] == "model_type" else "--" + fixed[0].replace("_", "-")
                raise ConfigError(f"{flag} {given[fixed[0]]}: the run in {out} was trained with {flag} "
                                  f"{getattr(cfg, fixed[0])}, and a resumed run keeps its model and objective "
                                  f"(only {', '.join('--' + k.replace('_', '-') for k in sorted(RESUMABLE))} "
                                  f"may change); start a new run with another --out")
        else:
            cfg = preset_config(args.preset, **given, **({"out": args.out} if args.out else {}))
        with terminate_as_interrupt():  # `kill PID` saves a checkpoint as Ctrl-C does
            summary = train(cfg.validate(), resume=args.resume, force=args.force)
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        print("error: out of memory; try a smaller --batch-size", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a folder that cannot be written: the newest checkpoint is intact
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (DataError, CheckpointError, TrainingError, BackendUnavailable, RunFolderError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
