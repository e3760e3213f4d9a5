"""Predictor.from_run(dir).predict(pairs): stance probabilities for (country, sentence) pairs from a run."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from . import distributed
from .data import read_json, sha256_file
from .mentions import load_gazetteer, target_view
from .segment import Segmenter, get_segmenter


def run_identity(run_dir: str | Path) -> dict:
    """The run's absolute path and one SHA-256 over the files in its model folder (weights, tokenizer, TF-IDF
    params; not a README model card, which evaluate may rewrite): a batch output folder records it, and
    --resume refuses to mix in another model's rows."""
    run_dir = Path(run_dir).resolve()
    digest = hashlib.sha256()
    for name, sha256 in model_file_hashes(run_dir).items():
        digest.update(f"model/{name} {sha256}\n".encode())
    return {"run": str(run_dir), "sha256": digest.hexdigest()}


def model_file_hashes(run_dir: str | Path) -> dict[str, str]:
    """SHA-256 of each file in the run's model folder that predictions depend on (every file but Markdown model
    cards), by its path inside that folder, in path order."""
    model_dir = Path(run_dir) / "model"
    files = sorted(path for path in model_dir.rglob("*") if path.is_file() and path.suffix != ".md")
    return {path.relative_to(model_dir).as_posix(): sha256_file(path) for path in files}


@dataclass
class Predictor:
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
    def from_run(cls, run_dir: str | Path, batch_size: int = 64, device: str = "cpu", precision: str = "auto",
                 backend: str = "torch") -> "Predictor":  # fmt: skip
        """Load a finished run onto `device` (cpu, cuda or auto; under torchrun, this rank's own GPU).
        `backend`: torch (default), or onnx / onnx-int8, the gated CPU exports of `stance export` (train/export.py)."""
        run_dir = Path(run_dir)
        info_path = run_dir / "run.json"
        if not info_path.is_file():
            raise FileNotFoundError(f"{run_dir}: not a run folder (no run.json)")
        info = read_json(info_path)
        if backend != "torch" and info.get("model_type") in ("tfidf", "ensemble"):
            raise ValueError(f"{run_dir}: a {info['model_type']} run has no ONNX export; use --backend torch")
        if info.get("model_type") == "tfidf":  # the baseline keeps its own format; same interface
            from .tfidf import TfidfPredictor

            return TfidfPredictor.from_run(run_dir, info)
        if info.get("model_type") == "ensemble":  # a weighted average of other runs; same interface
            from .ensemble import EnsemblePredictor

            return EnsemblePredictor.from_run(run_dir, info)
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
            import logging

            logging.getLogger(__name__).warning(
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
        import transformers

        name = json.loads((model_dir / "config.json").read_text(encoding="utf-8")).get("tokenizer_class") or ""
        expected = getattr(getattr(transformers, name, None), "vocab_files_names", {}).values()
        missing = [file for file in expected if not (model_dir / file).is_file()]
        if missing:
            raise FileNotFoundError(f"{model_dir / missing[0]}: missing; cannot load the run's tokenizer") from None
        raise ValueError(f"{model_dir}: cannot load the run's tokenizer ({type(err).__name__}: {err})") from None
