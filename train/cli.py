"""The `stance` command: argparse subcommands that parse arguments, configure logging and call the package."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stance", description="Vietnamese country-stance models (Russia–Ukraine war).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config", help="YAML config file, e.g. configs/tiny.yaml")
    train.add_argument("overrides", nargs="*", help="dotted overrides, e.g. training.learning_rate=3.0e-5 run_name=lr3")
    train.add_argument("--force", action="store_true", help="overwrite a non-empty run folder")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    train.add_argument("--threads", type=int, help="torch CPU threads (overrides training.threads)")

    predict = sub.add_parser("predict", help="predict stances with a trained run")
    predict.add_argument("run", help="run folder, e.g. models/tiny")
    predict.add_argument("--country", required=True, help="target country as named in the data, e.g. Pháp")
    predict.add_argument("--text", required=True, help="one Vietnamese sentence mentioning the country")
    predict.add_argument("--threads", type=int, default=1, help="torch CPU threads")

    # Overrides may come after options (`stance train c.yaml --force run_name=x`), which plain
    # argparse refuses for a nargs="*" positional once an option has been seen.
    args, extra = parser.parse_known_args(argv)
    stray = [item for item in extra if args.command != "train" or item.startswith("-") or "=" not in item]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if args.command == "train":
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, RuntimeError, FileNotFoundError) as err:
        # Our own errors already name the file, line or key; a traceback would bury that.
        print(f"stance {args.command}: error: {err}", file=sys.stderr)
        return 2


def _train(args: argparse.Namespace) -> int:
    from .config import load_config
    from .fit import fit

    overrides = list(args.overrides)
    if args.threads:
        overrides.append(f"training.threads={args.threads}")
    cfg = load_config(args.config, overrides)
    command = shlex.join(["stance", *sys.argv[1:]]) if sys.argv[1:] else ""
    run_dir = fit(cfg, force=args.force, resume=args.resume, command=command)
    print(run_dir)
    return 0


def _predict(args: argparse.Namespace) -> int:
    import torch

    from .predict import Predictor

    torch.set_num_threads(args.threads)
    result = Predictor.from_run(args.run).predict([(args.country, args.text)])[0]
    print(json.dumps({"country": args.country, "text": args.text, **result}, ensure_ascii=False))
    return 0


_COMMANDS = {"train": _train, "predict": _predict}

if __name__ == "__main__":
    sys.exit(main())
