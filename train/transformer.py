"""model.type: transformer: any transformers encoder (hub id, local folder, bundled, from scratch) fine-tuned with
the HF Trainer into a run folder, keeping the best dev macro-F1 checkpoint; and its predictor.

The kind interface (train/kinds.py): `fit` and `load`. Under torchrun every process trains (DDP over the group,
train/distributed.py) and rank 0 alone writes the run folder.
"""

from __future__ import annotations

import json
import logging
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import transformers
from sklearn.metrics import accuracy_score
from sklearn.utils.class_weight import compute_class_weight
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    ProgressCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

from . import distributed
from .config import Config
from .data import LABELS, load_splits, sha256_file
from .mentions import GAZETTEER_FILE, copy_gazetteer, load_gazetteer, target_view
from .metrics import macro_f1
from .modeling import (
    build_scratch_model,
    effective_max_length,
    learn_phobert_tokenizer,
    load_pretrained,
    resolve_source,
)
from .runinfo import STEP_LOG, package_versions
from .segment import Segmenter, get_segmenter
from .swap import swap_augmenter, uses_gazetteer

log = logging.getLogger(__name__)

MULTI_PROCESS = True  # every torchrun process trains (DDP); rank 0 writes the folder


def load(run_dir: Path, info: dict, *, batch_size: int = 64, device: str = "cpu", precision: str = "auto",
         backend: str = "torch") -> "TransformerPredictor":  # fmt: skip
    """A finished run's predictor on `device` (cpu, cuda or auto; under torchrun, this rank's own GPU).
    `backend`: torch (default), or onnx / onnx-int8, the gated CPU exports of `stance export` (train/export.py)."""
    return TransformerPredictor.from_run(run_dir, info, batch_size, device, precision, backend)


def fit(cfg: Config, run_dir: Path, *, command: str = "", checkpoint: str | None = None, device: str = "cpu",
        precision: str = "auto") -> Path:  # fmt: skip
    """Fine-tune into run_dir, resuming from `checkpoint` when given (train.fit prepared the folder)."""
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
    return {"accuracy": float(accuracy_score(gold, predicted)), "macro_f1": macro_f1(gold, predicted)}


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
        "model_type": "transformer",
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


@dataclass
class TransformerPredictor:
    """Everything predict needs travels with the run: labels, segmenter and max length come from run.json."""

    tokenizer: object
    model: torch.nn.Module
    labels: list[str]
    segmenter: Segmenter
    max_length: int
    batch_size: int = 64
    mark_target: bool = False  # wrap the target's mentions in « », as the run was trained
    mask_target: bool = False  # a third-country target reads as train.mentions.MASK, as the run was trained
    gazetteer: object = None  # the run's own copy (train.mentions.Gazetteer), or None: the country's name only
    device: torch.device = torch.device("cpu")  # where the model lives; inputs follow it
    autocast: torch.dtype | None = None  # fp16/bf16 on CUDA (train.distributed.autocast_dtype), else None

    @classmethod
    def from_run(cls, run_dir: Path, info: dict, batch_size: int = 64, device: str = "cpu", precision: str = "auto",
                 backend: str = "torch") -> "TransformerPredictor":  # fmt: skip
        if info.get("status") != "complete":
            raise FileNotFoundError(f"{run_dir}: training has not finished (status {info.get('status')!r}); resume it first")
        _check_model_files(run_dir / "model")
        device = distributed.resolve_device(device)
        autocast = distributed.autocast_dtype(device, precision)
        placed = distributed.process_device(device)
        if backend == "torch":
            # use_safetensors: never fall back to a pickle file, which could run any code as it loads.
            model = AutoModelForSequenceClassification.from_pretrained(run_dir / "model", use_safetensors=True)
            model = model.eval().to(placed)
        else:
            from .export import OnnxModel

            if placed.type != "cpu":
                raise ValueError(f"--backend {backend} runs on the CPU (ONNX Runtime); use --device cpu or --backend torch")
            model = OnnxModel.from_run(run_dir, backend)
        labels = [model.config.id2label[index] for index in range(model.config.num_labels)]
        if labels != info["labels"]:
            raise ValueError(f"{run_dir}: model labels {labels} differ from run.json labels {info['labels']}")
        segmenter = get_segmenter(info["segmenter"]["name"])
        if segmenter.version != info["segmenter"]["version"]:
            log.warning(
                "%s was trained with %s %s; %s is installed", run_dir, segmenter.name,
                info["segmenter"]["version"], segmenter.version,
            )  # fmt: skip
        tokenizer = _load_tokenizer(run_dir / "model")
        gazetteer = load_gazetteer(run_dir / info["gazetteer"]) if info.get("gazetteer") else None
        return cls(tokenizer, model, labels, segmenter, info["max_length"], batch_size,
                   info.get("mark_target", False), info.get("mask_target", False), gazetteer, placed,
                   autocast)  # fmt: skip

    def model_input(self, country: str, text: str, segment=None) -> tuple[str, str]:
        """The (country, sentence) strings the model reads: target marked if the run was trained so, then
        segmented (by `segment`, default the run's segmenter), exactly as fit.py prepared the training data."""
        segment = segment or self.segmenter
        country, text = target_view(text, country, self.gazetteer, mark=self.mark_target, mask=self.mask_target)
        return segment(country), segment(text)

    def _encode(self, pairs: list[tuple[str, str]]) -> dict[str, list[list[int]]]:
        """Token ids for each pair, as `tokenizer(countries, texts, truncation="only_second")` gives them.

        A sentence naming three countries is three pairs, and one country recurs across a whole batch: each
        distinct string is segmented and tokenized once. PhoBERT's tokenizer is slow (pure Python BPE), so
        this halves the tokenizer's share of predict time on news text; fast tokenizers take the batch call.
        """
        cache: dict[str, str] = {}

        def segment(text: str) -> str:
            if text not in cache:
                cache[text] = self.segmenter(text)
            return cache[text]

        prepared = [self.model_input(country, text, segment) for country, text in pairs]
        countries, texts = [country for country, _ in prepared], [text for _, text in prepared]
        if getattr(self.tokenizer, "is_fast", True) or not hasattr(self.tokenizer, "prepare_for_model"):
            return self.tokenizer(countries, texts, truncation="only_second", max_length=self.max_length)
        ids: dict[str, list[int]] = {}

        def token_ids(text: str) -> list[int]:
            if text not in ids:
                ids[text] = self.tokenizer.encode(text, add_special_tokens=False)
            return ids[text]

        rows = [
            self.tokenizer.prepare_for_model(token_ids(c), token_ids(t), truncation="only_second", max_length=self.max_length)
            for c, t in zip(countries, texts)
        ]
        return {key: [row[key] for row in rows] for key in rows[0].keys()} if rows else {"input_ids": []}

    @torch.inference_mode()
    def predict(self, pairs: list[tuple[str, str]]) -> list[dict]:
        """One dict per (country, sentence): the label and every class probability."""
        encoded = self._encode(pairs)
        # Sorting by length keeps padding, and so wasted compute, small inside each batch.
        order = sorted(range(len(pairs)), key=lambda i: len(encoded["input_ids"][i]))
        results: list[dict] = [{}] * len(pairs)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batch = self.tokenizer.pad(
                {key: [encoded[key][i] for i in chunk] for key in encoded.keys()}, return_tensors="pt"
            )
            if self.device.type == "cuda":  # pinned pages copy to the GPU asynchronously
                batch = {key: value.pin_memory().to(self.device, non_blocking=True) for key, value in batch.items()}
            with distributed.autocast(self.device.type, self.autocast):
                logits = self.model(**batch).logits
            probs = torch.softmax(logits.float(), dim=-1).tolist()
            for index, row in zip(chunk, probs):
                best = max(range(len(row)), key=row.__getitem__)
                results[index] = {"label": self.labels[best], "probs": dict(zip(self.labels, row))}
        return results


def _check_model_files(model_dir: Path) -> None:
    """One line naming what is wrong with a finished run's model folder, before transformers raises."""
    if not model_dir.is_dir():
        raise FileNotFoundError(f"{model_dir}: missing, though run.json says training finished; "
                                "copy the run's model folder back or train again")  # fmt: skip
    if not (model_dir / "config.json").is_file():
        raise FileNotFoundError(f"{model_dir / 'config.json'}: missing; the run's model folder is incomplete")
    if not any((model_dir / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")):
        for name in ("pytorch_model.bin", "pytorch_model.bin.index.json"):
            if (model_dir / name).is_file():
                raise ValueError(f"{model_dir / name}: pickle weights are refused (loading one can run any code); "
                                 "save the model as model.safetensors")  # fmt: skip
        raise FileNotFoundError(f"{model_dir / 'model.safetensors'}: missing; the run's model folder is incomplete")


def _load_tokenizer(model_dir: Path):
    """The run's tokenizer; when it cannot load, the line names the tokenizer file that is missing."""
    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError, TypeError, AttributeError) as err:
        name = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("tokenizer_class") or ""
        expected = getattr(getattr(transformers, name, None), "vocab_files_names", {}).values()
        missing = [file for file in expected if not (model_dir / file).is_file()]
        if missing:
            raise FileNotFoundError(f"{model_dir / missing[0]}: missing; cannot load the run's tokenizer") from None
        raise ValueError(f"{model_dir}: cannot load the run's tokenizer ({type(err).__name__}: {err})") from None

