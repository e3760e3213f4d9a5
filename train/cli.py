"""The `stance` command: argparse subcommands that parse arguments, configure logging and call the package."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys

from . import __version__


BACKENDS = ("torch", "onnx", "onnx-int8")  # train/export.py's, repeated so `stance --help` imports no torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stance", description="Vietnamese country-stance models (Russia–Ukraine war).")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model from a YAML config")
    train.add_argument("config", help="YAML config file, e.g. configs/tiny.yaml")
    train.add_argument("overrides", nargs="*", help="dotted overrides, e.g. training.learning_rate=3.0e-5 run_name=lr3")
    train.add_argument("--force", action="store_true", help="overwrite a non-empty run folder")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    train.add_argument("--threads", type=int, help="torch CPU threads (overrides training.threads)")
    train.add_argument("--seeds", help="comma-separated seeds, e.g. 1,2,3: one run per seed (run_name-s1, ...) "
                       "and <output_dir>/<run_name>-seeds.json with mean ± std")  # fmt: skip
    add_device_options(train)

    pretrain = sub.add_parser("pretrain", help="continue masked-language-model training of an encoder on "
                              "unlabeled text; writes RUN/backbone for model.name_or_path")  # fmt: skip
    pretrain.add_argument("config", help="YAML config file, e.g. configs/pretrain-e5-small-vi.yaml")
    pretrain.add_argument("overrides", nargs="*", help="dotted overrides, e.g. training.max_steps=500 run_name=dapt")
    pretrain.add_argument("--force", action="store_true", help="overwrite a non-empty run folder")
    pretrain.add_argument("--resume", action="store_true", help="continue an interrupted run from its last checkpoint")
    pretrain.add_argument("--threads", type=int, help="torch CPU threads (overrides training.threads)")

    evaluate = sub.add_parser("evaluate", help="score a trained run on a split or data file; write RUN/eval/<name>/")
    evaluate.add_argument("run", help="run folder, e.g. models/tiny")
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument("--data", help="a JSONL file with id, text, country, label (eval name = file stem)")
    source.add_argument("--split", default="test", help="train, dev or test from the run's config (default test)")
    source.add_argument("--articles", metavar="DIR", help="a folder of pages with gold.jsonl: score the per-article "
                        "verdicts (eval name articles-<folder>)")  # fmt: skip
    evaluate.add_argument("--name", help="the eval folder RUN/eval/NAME (default: the split, data file stem or articles-<folder>)")
    evaluate.add_argument("--swaps", type=int, default=3, help="country-swap copies per third-country example (0: none)")
    evaluate.add_argument("--swap-seed", type=int, default=0, help="seed of the country swaps")
    evaluate.add_argument("--min-evidence", type=float, help="--articles: verdict threshold (default: predict's)")
    evaluate.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    evaluate.add_argument("--force", action="store_true",
                          help="replace RUN/eval/<name> even when it holds another data file's evaluation")  # fmt: skip
    add_device_options(evaluate)
    evaluate.add_argument("--backend", default="torch", choices=BACKENDS, help="torch, or a gated `stance export`")

    compare = sub.add_parser("compare", help="compare evaluated runs (or *-seeds.json groups) with significance")
    compare.add_argument("runs", nargs="+", help="run folders or seed-group files; deltas are against the first")
    compare.add_argument("--eval", default="test", help="which RUN/eval/<name> to compare (default test)")
    compare.add_argument("--output", help="also write the Markdown here")
    compare.add_argument("--html", help="write a self-contained HTML report here")
    compare.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (at least 1000)")

    predict = sub.add_parser("predict", help="predict stances with a trained run")
    predict.add_argument("run", help="run folder, e.g. models/tiny")
    predict.add_argument("--country", help="pair mode: target country as named in the data, e.g. Pháp")
    predict.add_argument("--text", help="pair mode: one Vietnamese sentence mentioning the country")
    predict.add_argument("--input", nargs="+", metavar="PATH",
                         help="batch mode: .txt/.html files, folders of them, .jsonl/.csv (a text column), or - for stdin")
    predict.add_argument("--output", metavar="DIR", help="batch mode: folder for sentences/articles/summary outputs")
    predict.add_argument("--text-field", default="text", help="batch mode: the text field of .jsonl/.csv inputs")
    predict.add_argument("--gazetteer", help="country gazetteer YAML (default: data/countries.yaml of the package)")
    predict.add_argument("--resume", action="store_true", help="batch mode: skip documents already finished in DIR")
    predict.add_argument("--force", action="store_true", help="batch mode: overwrite earlier outputs in DIR")
    predict.add_argument("--batch-size", type=_at_least_one,
                         help="pairs per forward pass (default 32 on CPU, 256 on GPU)")  # fmt: skip
    predict.add_argument("--top-k", type=_at_least_one, default=3, help="evidence sentences per article and country")
    predict.add_argument("--min-evidence", type=float, help="a sentence gives its country a stance only when the "
                         "model's probability for it is at least this (default: train/batch.py MIN_EVIDENCE)")  # fmt: skip
    predict.add_argument("--threads", type=_at_least_one, default=1, help="torch CPU threads")
    add_device_options(predict)
    predict.add_argument("--backend", default="torch", choices=BACKENDS, help="torch, or a gated `stance export`")

    export = sub.add_parser("export", help="export a run's model to ONNX (RUN/onnx/), gated on accuracy")
    export.add_argument("run", help="run folder, e.g. models/e5-small")
    export.add_argument("--onnx", action="store_true", required=True, help="ONNX (the one format so far)")
    export.add_argument("--int8", action="store_true", help="also a dynamically quantized int8 model")
    export.add_argument("--realdev", help="second gate file (default: shared/realdev/sentences.jsonl beside the repo)")
    export.add_argument("--threads", type=_at_least_one, default=1, help="CPU threads")

    data = sub.add_parser("data", help="check and describe the stance dataset")
    data.add_argument("action", choices=("validate", "stats", "split", "add", "agreement"))
    data.add_argument("inputs", nargs="*", help="split: example JSONL files to re-split by story; "
                      "add: JSONL files of new stories to place in the existing splits")  # fmt: skip
    data.add_argument("--data-dir", default="data/stance", help="folder with train/dev/test.jsonl")
    data.add_argument("--gazetteer", default="data/countries.yaml", help="country gazetteer (YAML)")
    data.add_argument("--markdown", help="stats: also write the table to this Markdown file")
    data.add_argument("--second", help="agreement: the blind second annotation (JSONL: id, label)")
    data.add_argument("--disagreements", help="agreement: write the disagreeing examples (both labels) to this JSONL")

    # Overrides may come after options (`stance train c.yaml --force run_name=x`), which plain
    # argparse refuses for a nargs="*" positional once an option has been seen.
    args, extra = parser.parse_known_args(argv)
    with_overrides = ("train", "pretrain")
    stray = [item for item in extra if args.command not in with_overrides or item.startswith("-") or "=" not in item]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if args.command in with_overrides:
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return _COMMANDS[args.command](args)
    except (ValueError, RuntimeError, FileNotFoundError, FileExistsError) as err:
        # Our own errors already name the file, line or key; a traceback would bury that.
        print(f"stance {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"stance {args.command}: interrupted", file=sys.stderr)
        return 130


def _at_least_one(text: str) -> int:
    """argparse type for counts: a batch of 0 pairs or 0 evidence sentences makes no sense."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_device_options(parser: argparse.ArgumentParser) -> None:
    """--device and --precision, the same for train, evaluate and predict (checked in train/distributed.py)."""
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: cuda when torch sees a GPU (under torchrun, each process its LOCAL_RANK's), else cpu")
    parser.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto",
                        help="auto: bf16 (fp16 where the GPU lacks it) autocast on CUDA, fp32 on CPU")  # fmt: skip


def _train(args: argparse.Namespace) -> int:
    # The config is checked before torch and transformers load (seconds): a typo fails at once.
    from .config import load_config

    overrides = list(args.overrides)
    if args.threads:
        overrides.append(f"training.threads={args.threads}")
    cfg = load_config(args.config, overrides)
    try:
        seeds = [int(seed) for seed in args.seeds.split(",") if seed.strip()] if args.seeds else []
    except ValueError:
        raise ValueError(f"--seeds must be comma-separated integers, e.g. 1,2,3; got {args.seeds!r}") from None
    configs = [load_config(args.config, [*overrides, f"training.seed={seed}", f"run_name={cfg.run_name}-s{seed}"])
               for seed in seeds] or [cfg]  # fmt: skip
    from .distributed import is_main
    from .fit import fit

    command = shlex.join(["stance", *sys.argv[1:]]) if sys.argv[1:] else ""
    device = {"device": args.device, "precision": args.precision}
    run_dirs = []
    for seeded in configs:
        try:
            run_dirs.append(fit(seeded, force=args.force, resume=args.resume, command=command, **device))
        except KeyboardInterrupt:
            kept = "run again with --resume to continue" if seeded.run_dir.is_dir() else "nothing was kept"
            print(f"stance train: interrupted; {kept} ({seeded.run_dir})", file=sys.stderr)
            return 130
        if is_main():  # under torchrun, one line, not one per process
            print(run_dirs[-1])
    if not seeds or not is_main():
        return 0
    from .compare import aggregate_seeds

    group = cfg.run_dir.parent / f"{cfg.run_name}-seeds.json"
    summary = aggregate_seeds(run_dirs, seeds, group)
    for key, stat in summary["dev"].items():
        print(f"dev {key}: {stat['mean']:.4f} ± {stat['std']:.4f} over {stat['n']} seeds")
    print(group)
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from .config import load_pretrain_config

    overrides = [*args.overrides, *([f"training.threads={args.threads}"] if args.threads else [])]
    cfg = load_pretrain_config(args.config, overrides)  # before torch loads: a typo fails at once
    from .pretrain import pretrain

    command = shlex.join(["stance", *sys.argv[1:]]) if sys.argv[1:] else ""
    try:
        run_dir = pretrain(cfg, force=args.force, resume=args.resume, command=command)
    except KeyboardInterrupt:
        kept = "run again with --resume to continue" if cfg.run_dir.is_dir() else "nothing was kept"
        print(f"stance pretrain: interrupted; {kept} ({cfg.run_dir})", file=sys.stderr)
        return 130
    print(run_dir / "backbone")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import torch

    from .distributed import world_size
    from .evaluation import evaluate_run

    if world_size() > 1:  # every process would write the same RUN/eval/<name>/ files
        raise ValueError("evaluate runs in one process (a test split is small); start it without torchrun")
    torch.set_num_threads(args.threads)
    if args.swaps < 0:
        raise ValueError(f"--swaps must be 0 or more; got {args.swaps}")
    if args.articles:
        from .verdicts import evaluate_articles

        out_dir = evaluate_articles(args.run, args.articles, min_evidence=args.min_evidence, name=args.name)
        metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
        print(f"article verdicts: accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  "
              f"({metrics['n']} gold pairs, min_evidence {metrics['min_evidence']})")  # fmt: skip
        print(out_dir)
        return 0
    out_dir = evaluate_run(args.run, data=args.data, split=args.split, swaps=args.swaps, swap_seed=args.swap_seed,
                           name=args.name, force=args.force, device=args.device, precision=args.precision,
                           backend=args.backend)  # fmt: skip
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    print(f"accuracy {metrics['accuracy']:.4f}  macro-F1 {metrics['macro_f1']:.4f}  F_avg {metrics['f_avg']:.4f}  "
          f"ECE {metrics['calibration']['ece']:.4f}  ({metrics['n']} examples)")  # fmt: skip
    swap = metrics["swap"]
    if swap["n_copies"]:
        print(f"country swap: consistency {swap['consistency']:.4f}  swap macro-F1 {swap['macro_f1']:.4f}  "
              f"(same examples unswapped {swap['original_macro_f1']:.4f}; {swap['n_copies']} copies of "
              f"{swap['n_originals']} third-country examples)")  # fmt: skip
    print(out_dir)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .compare import compare, write_comparison

    result = compare(args.runs, eval_name=args.eval, n_resamples=args.resamples)
    text = write_comparison(result, Path(args.output) if args.output else None, Path(args.html) if args.html else None)
    print(text)
    return 0


def _predict(args: argparse.Namespace) -> int:
    if args.input or args.output:
        _check_batch_paths(args)  # before torch loads (seconds): a typo or a wrong folder fails at once
    import torch
    from transformers.utils import logging as hf_logging

    from .predict import load_predictor

    torch.set_num_threads(args.threads)
    hf_logging.disable_progress_bar()  # a "Loading weights" bar for a model that loads in a blink is noise
    if args.input or args.output:
        return _predict_batch(args)
    if not (args.country and args.text):
        raise ValueError("give --country and --text for one pair, or --input PATH... --output DIR for a batch")
    import unicodedata
    from pathlib import Path

    from .mentions import DEFAULT_GAZETTEER, load_gazetteer, target_spans

    predictor = load_predictor(args.run, device=args.device, precision=args.precision, backend=args.backend)
    gazetteer = predictor.gazetteer or load_gazetteer(Path(args.gazetteer) if args.gazetteer else DEFAULT_GAZETTEER)
    country, text = (unicodedata.normalize("NFC", value) for value in (args.country, args.text))
    if target_spans(text, country, gazetteer):
        result = predictor.predict([(args.country, args.text)])[0]
    else:  # the model was only ever shown sentences that mention their target: its answer would be a guess
        note = f"{args.country!r} is not mentioned in the text (by any name the gazetteer knows): label none"
        print(f"stance predict: warning: {note}", file=sys.stderr)
        result = {"label": "none", "probs": None, "warning": note}
    print(json.dumps({"country": args.country, "text": args.text, **result}, ensure_ascii=False))
    return 0


def _data(args: argparse.Namespace) -> int:
    from pathlib import Path

    from . import datacheck

    splits = {name: Path(args.data_dir) / f"{name}.jsonl" for name in ("train", "dev", "test")}
    if args.action in ("split", "add"):
        from .data import read_jsonl, write_jsonl

        if not args.inputs:
            raise ValueError(f"data {args.action}: give the example JSONL file(s) to "
                             f"{'re-split' if args.action == 'split' else 'add'}; nothing was written")  # fmt: skip
        rows = [row for path in args.inputs for row in read_jsonl(path)]
        existing = {name: read_jsonl(path) for name, path in splits.items()} if args.action == "add" else None
        for name, part in datacheck.split_by_story(rows, existing=existing).items():
            write_jsonl(splits[name], part)
            print(f"{splits[name]}: {len(part)} examples")
        return 0
    if args.action == "agreement":
        from .data import read_jsonl

        if not args.second:
            raise ValueError("data agreement: give --second FILE, the blind second annotation (JSONL: id, label)")
        gold = [row for path in splits.values() for row in read_jsonl(path)]
        second = read_jsonl(args.second, fields=("id", "label"))
        result = datacheck.agreement(gold, second)
        print(json.dumps({k: v for k, v in result.items() if k != "disagreements"}, indent=2))
        print(f"{len(result['disagreements'])} disagreement(s)")
        if args.disagreements:
            from .data import write_jsonl

            write_jsonl(args.disagreements, result["disagreements"])
        return 0
    report = datacheck.validate(splits, args.gazetteer)
    if args.action == "validate":
        for error in report.errors:
            print(error, file=sys.stderr)
        total = sum(len(rows) for rows in report.rows.values())
        print(f"{len(report.errors)} problem(s) in {total} examples" if report.errors else f"ok: {total} examples valid")
        return 1 if report.errors else 0
    from .mentions import load_gazetteer

    numbers = datacheck.stats(report.rows, load_gazetteer(args.gazetteer))
    table = datacheck.stats_markdown(numbers, list(report.rows))
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table, encoding="utf-8")
    return 0


def _check_batch_paths(args: argparse.Namespace) -> None:
    from pathlib import Path

    from .batch import check_output_folder

    inputs = args.input or []
    missing = [item for item in inputs if item != "-" and not Path(item).exists()]
    if missing:
        raise FileNotFoundError(f"--input: no such file or folder: {', '.join(missing)} (nothing was written)")
    if inputs.count("-") > 1:
        raise ValueError("--input: '-' (stdin) can be given only once: stdin is read to its end the first time")
    if args.output:
        check_output_folder(Path(args.output))  # checked again under the folder's lock


def _predict_batch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tqdm.contrib.logging import logging_redirect_tqdm

    from .batch import MIN_EVIDENCE, iter_documents
    from .data import sha256_file
    from .distributed import default_batch_size, is_main, resolve_device
    from .mentions import DEFAULT_GAZETTEER, load_gazetteer
    from .predict import load_predictor
    from .runinfo import run_identity
    from .shards import predict_sharded

    if not (args.input and args.output):
        raise ValueError("batch mode needs both --input PATH... and --output DIR")
    gazetteer_path = Path(args.gazetteer) if args.gazetteer else DEFAULT_GAZETTEER
    gazetteer = load_gazetteer(gazetteer_path)
    device = resolve_device(args.device)
    predictor = load_predictor(args.run, batch_size=args.batch_size or default_batch_size(device), device=device,
                                   precision=args.precision, backend=args.backend)  # fmt: skip
    min_evidence = MIN_EVIDENCE if args.min_evidence is None else args.min_evidence
    if not 0 <= min_evidence <= 1:
        raise ValueError(f"--min-evidence must be a probability in [0, 1]; got {min_evidence}")
    # What --resume must find unchanged: the model, and the options that decide the rows.
    gazetteer_id = {"path": str(gazetteer_path.resolve()), "sha256": sha256_file(gazetteer_path)}
    settings = {"model": run_identity(args.run), "text_field": args.text_field, "gazetteer": gazetteer_id,
                "min_evidence": min_evidence, "backend": args.backend}  # fmt: skip
    documents = iter_documents(args.input, text_field=args.text_field)
    try:
        with logging_redirect_tqdm():  # a warning gets a line of its own instead of breaking into the bar
            stats = predict_sharded(predictor, documents, gazetteer, args.output, resume=args.resume,
                                    force=args.force, settings=settings, top_k=args.top_k,
                                    min_evidence=min_evidence)  # fmt: skip
    except KeyboardInterrupt:
        print(f"stance predict: interrupted; finished documents are kept in {args.output}; "
              "run again with --resume to continue", file=sys.stderr)  # fmt: skip
        return 130
    if is_main():
        print(json.dumps({"output": args.output, **stats}))
    # Bad documents never fail the batch; only a batch where nothing at all could be read does.
    return 0 if stats["ok"] + stats["already_done"] else 1


def _export(args: argparse.Namespace) -> int:
    import torch

    from .export import DEFAULT_REALDEV, export_onnx

    torch.set_num_threads(args.threads)
    manifest = export_onnx(args.run, int8=args.int8, realdev=args.realdev or DEFAULT_REALDEV)
    for note in manifest["notes"]:
        print(f"note: {note}")
    for backend, variant in manifest["variants"].items():
        checks = "  ".join(f"{name} {c['macro_f1']:.4f} (torch {c['torch_macro_f1']:.4f}, Δ {c['delta']:+.4f})"
                           for name, c in variant["checks"].items())  # fmt: skip
        verdict = "usable" if variant["usable"] else f"UNUSABLE: {variant['reason']}"
        print(f"{backend}: {variant['file']} sha256 {variant['sha256'][:12]}  {checks}  → {verdict}")
    return 0 if all(variant["usable"] for variant in manifest["variants"].values()) else 1


_COMMANDS = {"train": _train, "pretrain": _pretrain, "predict": _predict, "data": _data, "evaluate": _evaluate,
             "compare": _compare,
             "export": _export}  # fmt: skip

if __name__ == "__main__":
    sys.exit(main())
