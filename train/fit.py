"""fit(cfg) → a self-describing run folder, for every model kind (train/kinds.py): check the inputs, prepare or
resume the folder, let the kind's module train into it, write its model card."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch
from transformers import set_seed

from . import distributed
from .config import PATH_KEYS, PATH_RULE, Config, config_to_dict, dump_config, load_config
from .data import read_json, read_jsonl, sha256_file
from .kinds import kind_module
from .mentions import load_gazetteer
from .modelcard import write_model_card
from .runinfo import run_log
from .swap import uses_gazetteer

log = logging.getLogger(__name__)

# Every file a Trainer checkpoint needs to resume; a kill during saving can leave a folder without some.
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "model.safetensors")


class RunFolderError(RuntimeError):
    """The run folder is in a state that this call must not touch (exists, or has nothing to resume)."""


def fit(cfg: Config, *, force: bool = False, resume: bool = False, command: str = "", device: str = "auto",
        precision: str = "auto") -> Path:  # fmt: skip
    """Train one run described by `cfg` into `cfg.run_dir` and return that folder.

    The data is checked before the run folder is touched; a fresh run that fails before its first checkpoint
    removes its folder again, so that a corrected retry needs no --force. Under torchrun every process calls
    this: DDP over the group (train/distributed.py), rank 0 alone writes the run folder, and every rank
    returns once the folder is finished.
    """
    run_dir = cfg.run_dir
    check_inputs(cfg)
    device = distributed.resolve_device(device)
    kind = kind_module(cfg.model.type)
    if kind.MULTI_PROCESS:  # refuse an uneven split before the run folder is touched
        distributed.per_process_batch(cfg.training.batch_size, distributed.world_size())
    distributed.init(device)
    checkpoint = distributed.on_main(_prepare_run_dir, cfg, run_dir, force=force, resume=resume)
    if checkpoint == "complete":
        log.info("%s is already complete; nothing to resume", run_dir)
        return run_dir
    torch.set_num_threads(cfg.training.threads)
    set_seed(cfg.training.seed)

    try:
        with run_log(run_dir / "train.log", write=distributed.is_main()):
            if kind.MULTI_PROCESS:
                kind.fit(cfg, run_dir, command=command, checkpoint=checkpoint, device=device, precision=precision)
                distributed.barrier()  # the other ranks wait for rank 0 to finish the folder
            else:  # TF-IDF, ensemble: one process is all they use, and nothing to resume
                distributed.on_main(kind.fit, cfg, run_dir, command=command)
    except BaseException:
        if not resume and distributed.is_main() and last_complete_checkpoint(run_dir / "checkpoints") is None:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    # Outside the try: the run is finished, and nothing a card does may remove it.
    distributed.on_main(write_model_card, run_dir)  # RUN/model/README.md, for every finished run
    return run_dir


def check_inputs(cfg: Config) -> None:
    """Fail before any folder is made or deleted when a file the run reads is missing or unusable."""
    needed = {"data.train": cfg.data.train, "data.dev": cfg.data.dev}
    if cfg.model.gazetteer and (uses_gazetteer(cfg) or cfg.model.type == "tfidf"):
        needed["model.gazetteer"] = cfg.model.gazetteer
    for key, path in needed.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{key}: {path} not found ({PATH_RULE})")
    read_jsonl(cfg.data.train)
    read_jsonl(cfg.data.dev)
    if "model.gazetteer" in needed:
        load_gazetteer(cfg.model.gazetteer)


def _prepare_run_dir(cfg: Config, run_dir: Path, *, force: bool, resume: bool) -> str | None:
    """Return the checkpoint to resume from, None for a fresh run, or "complete"."""
    if force and resume:
        raise RunFolderError("--force and --resume contradict each other: choose one")
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise RunFolderError(f"{run_dir}: nothing to resume (no config.yaml); start it without --resume")
        saved = load_config(run_dir / "config.yaml")
        changed = _diff_keys(_comparable(saved), _comparable(cfg))
        if changed:
            raise RunFolderError(f"{run_dir}: config differs from the interrupted run in {', '.join(changed)}")
        info = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
        if info.get("status") == "complete":
            return "complete"
        _check_same_data(cfg, run_dir, info)
        return last_complete_checkpoint(run_dir / "checkpoints")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise RunFolderError(
                f"{run_dir} already exists and is not empty: use --force to overwrite it, "
                f"--resume to continue it, or choose another run_name"
            )
        if not is_run_folder(run_dir):
            raise RunFolderError(
                f"{run_dir} is not a run folder (no run.json or config.yaml of ours): --force only replaces "
                f"runs, never other folders; choose another run_name or output_dir"
            )
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
    return None


def is_run_folder(folder: Path) -> bool:
    """True when `folder` holds the run.json or config.yaml that fit writes (so --force may replace it)."""
    try:
        info = read_json(folder / "run.json") if (folder / "run.json").is_file() else None
        if isinstance(info, dict) and "status" in info and "labels" in info:
            return True
        return (folder / "config.yaml").is_file() and bool(load_config(folder / "config.yaml"))
    except ValueError:  # not ours: unreadable, or another program's config.yaml
        return False


def _comparable(cfg: Config) -> dict:
    """The config as a dict with absolute paths: the same file named from another folder is no change."""
    values = config_to_dict(cfg)
    for key in PATH_KEYS:
        section, _, name = key.rpartition(".")
        owner = values[section] if section else values
        if owner[name] and Path(owner[name]).exists():
            owner[name] = str(Path(owner[name]).resolve())
    return values


def _check_same_data(cfg: Config, run_dir: Path, info: dict) -> None:
    """Refuse to resume on a train or dev file whose content changed since the run started (run.json's sha256)."""
    for split in ("train", "dev"):
        recorded = (info.get("data") or {}).get(split)
        path = getattr(cfg.data, split)
        if recorded and sha256_file(path) != recorded["sha256"]:
            raise RunFolderError(
                f"{run_dir}: data.{split} {path} changed since the run started (sha256 {recorded['sha256'][:12]}… "
                f"is now {sha256_file(path)[:12]}…); resuming would train on two data sets: start a new run "
                f"(another run_name, or --force)"
            )


def last_complete_checkpoint(folder: Path) -> str | None:
    """The newest checkpoint-N folder holding every file a resume needs, or None to start over."""
    candidates = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for candidate in candidates:
        if all((candidate / name).is_file() for name in CHECKPOINT_FILES):
            return str(candidate)
        log.warning("ignoring incomplete checkpoint %s", candidate)
    return None


def _diff_keys(old: dict, new: dict, prefix: str = "") -> list[str]:
    keys = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += _diff_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


