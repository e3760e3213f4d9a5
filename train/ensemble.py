"""model.type: ensemble: a weighted average of finished runs' class probabilities, weights fit on the dev split.

The run folder holds model/ensemble.json: each member's path (as the config wrote it) with the sha256 of every
file under its model/ folder but Markdown model cards, the weights and the dev scores that chose them. Loading
checks each member against it, so a moved, retrained or edited member is an error naming that member, not a
silent change of predictions.
Weights are chosen on data.dev only (never on test or realdev): every point of a grid on the simplex (step
model.ensemble.grid_step) is scored, by dev macro-F1 with ties broken by lower log-loss, or by log-loss alone.
"""

from __future__ import annotations

import itertools
import logging
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Config
from .data import LABELS, read_json, read_jsonl, sha256_file, split_files, write_json
from .metrics import macro_f1
from .predict import load_predictor
from .runinfo import model_file_hashes, package_versions

log = logging.getLogger(__name__)

MULTI_PROCESS = False  # the kind interface (train/kinds.py): under torchrun, rank 0 alone fits
ENSEMBLE_FILE = "ensemble.json"
FORMAT_VERSION = 1


class EnsembleMemberError(RuntimeError):
    """A member run is missing, unfinished, or not the run the ensemble was fit with."""


def load(run_dir: Path, info: dict, *, batch_size: int = 64, device: str = "cpu", precision: str = "auto",
         backend: str = "torch") -> "EnsemblePredictor":  # fmt: skip
    """The finished ensemble's predictor (the kind interface, train/kinds.py): each member loaded with the same
    batch size, device and precision."""
    if backend != "torch":
        raise ValueError(f"{run_dir}: an ensemble run has no ONNX export; use --backend torch")
    return EnsemblePredictor.from_run(run_dir, info, batch_size=batch_size, device=device, precision=precision)


def _load_member(index: int, path: str, recorded: dict[str, str] | None = None, **options):
    """The member's predictor (`options`: load_predictor's batch_size, device, precision); with `recorded`
    hashes, first check that its model files are still those."""
    run_dir = Path(path)
    name = f"ensemble member {index + 1} ({path})"
    if not (run_dir / "run.json").is_file():
        raise EnsembleMemberError(f"{name}: not a run folder (no run.json); was it moved or deleted?")
    if recorded is not None:
        found = model_file_hashes(run_dir)
        changed = sorted(f for f in recorded.keys() | found.keys() if recorded.get(f) != found.get(f))
        if changed:
            raise EnsembleMemberError(
                f"{name}: model files differ from those the ensemble was fit with ({', '.join(changed[:5])}); "
                f"restore that run or fit the ensemble again")  # fmt: skip
    try:
        return load_predictor(run_dir, **options)
    except (FileNotFoundError, ValueError) as err:
        raise EnsembleMemberError(f"{name}: {err}") from None


def _member_probs(predictor, pairs: list[tuple[str, str]], labels: list[str]) -> np.ndarray:
    return np.array([[out["probs"][label] for label in labels] for out in predictor.predict(pairs)])


def weight_grid(n_members: int, step: float) -> list[tuple[float, ...]]:
    """Every weight vector with entries in multiples of `step` that sums to 1, in a fixed order."""
    n = round(1 / step)
    return [tuple(c / n for c in counts)
            for counts in itertools.product(range(n + 1), repeat=n_members) if sum(counts) == n]  # fmt: skip


def log_loss(probs: np.ndarray, gold: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(gold)), gold], 1e-12, None))))


def choose_weights(member_probs: list[np.ndarray], gold: np.ndarray, step: float, objective: str) -> tuple:
    """(weights, dev macro-F1, dev log-loss) of the best grid point; earlier grid points win exact ties."""
    best, best_key = None, None
    stacked = np.stack(member_probs)  # members x examples x labels
    for weights in weight_grid(len(member_probs), step):
        probs = np.tensordot(np.array(weights), stacked, axes=1)
        f1, loss = macro_f1(gold, probs.argmax(axis=1), probs.shape[1]), log_loss(probs, gold)
        key = (-f1, round(loss, 12)) if objective == "macro_f1" else (round(loss, 12), -f1)
        if best_key is None or key < best_key:
            best, best_key = (weights, f1, loss), key
    return best


def fit(cfg: Config, run_dir: Path, *, command: str = "", checkpoint: str | None = None, device: str = "cpu",
        precision: str = "auto") -> Path:  # fmt: skip
    """Score each member on data.dev (members loaded on `device`), choose the weights, and write the ensemble's
    run folder. Nothing to resume: it takes as long as predicting dev with each member."""
    started = time.time()
    ensemble = cfg.model.ensemble
    dev = read_jsonl(cfg.data.dev)
    pairs = [(row["country"], row["text"]) for row in dev]
    labels = list(LABELS)
    gold = np.array([labels.index(row["label"]) for row in dev])
    members, member_probs = [], []
    for index, path in enumerate(ensemble.members):
        predictor = _load_member(index, path, device=device, precision=precision)
        if list(predictor.labels) != labels:
            raise EnsembleMemberError(f"ensemble member {index + 1} ({path}): labels {predictor.labels} differ "
                                      f"from {labels}")  # fmt: skip
        log.info("ensemble member %d/%d: predicting %d dev examples with %s", index + 1, len(ensemble.members),
                 len(pairs), path)  # fmt: skip
        probs = _member_probs(predictor, pairs, labels)
        member_probs.append(probs)
        info = read_json(Path(path) / "run.json")
        members.append({
            "path": path, "model_type": info.get("model_type", "transformer"),
            "sha256": model_file_hashes(Path(path)),
            "dev": {"macro_f1": macro_f1(gold, probs.argmax(axis=1), len(labels)), "log_loss": log_loss(probs, gold)},
        })  # fmt: skip
    weights, f1, loss = choose_weights(member_probs, gold, ensemble.grid_step, ensemble.objective)
    for member, weight in zip(members, weights):
        member["weight"] = weight
    probs = np.tensordot(np.array(weights), np.stack(member_probs), axes=1)
    best_dev = {"accuracy": float(np.mean(probs.argmax(axis=1) == gold)), "macro_f1": f1, "log_loss": loss}

    model_dir = run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    spec = {"format_version": FORMAT_VERSION, "labels": labels, "objective": ensemble.objective,
            "grid_step": ensemble.grid_step, "fit_on": {"path": cfg.data.dev, "sha256": sha256_file(cfg.data.dev)},
            "members": members}  # fmt: skip
    write_json(model_dir / ENSEMBLE_FILE, spec)
    write_json(run_dir / "metrics.json", {"best_epoch": None, "best_dev": best_dev,
                                           "train_seconds": round(time.time() - started, 1), "epochs": []})
    write_json(run_dir / "run.json", {
        "status": "complete",
        "model_type": "ensemble",
        "command": command or " ".join(sys.argv),
        "labels": labels,
        "members": [m["path"] for m in members],
        "weights": list(weights),
        "data": split_files(cfg.data),
        "versions": package_versions(),
        "platform": platform.platform(),
    })  # fmt: skip
    log.info("ensemble weights %s: dev macro-F1 %.4f, log-loss %.4f (members: %s); run folder %s", weights, f1, loss,
             ", ".join(f"{m['dev']['macro_f1']:.4f}" for m in members), run_dir)  # fmt: skip
    return run_dir


@dataclass
class EnsemblePredictor:
    """The predictor interface (train/kinds.py): .labels and .predict(pairs) → [{label, probs}]."""

    members: list
    weights: list[float]
    labels: list[str]
    gazetteer: object = None  # the first member's copy: what finds the target's mentions, as for one run

    @classmethod
    def from_run(cls, run_dir: Path, info: dict, **options) -> "EnsemblePredictor":
        spec_path = run_dir / "model" / ENSEMBLE_FILE
        if info.get("status") != "complete" or not spec_path.is_file():
            raise FileNotFoundError(f"{run_dir}: the ensemble has not been fit (status {info.get('status')!r})")
        spec = read_json(spec_path)
        if spec.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{spec_path}: format_version {spec.get('format_version')!r}, this code reads "
                             f"{FORMAT_VERSION}")  # fmt: skip
        members = []
        for index, member in enumerate(spec["members"]):
            predictor = _load_member(index, member["path"], member["sha256"], **options)
            if list(predictor.labels) != spec["labels"]:
                raise EnsembleMemberError(f"ensemble member {index + 1} ({member['path']}): labels "
                                          f"{predictor.labels} differ from {spec['labels']}")  # fmt: skip
            members.append(predictor)
        gazetteer = next((g for g in (getattr(m, "gazetteer", None) for m in members) if g is not None), None)
        return cls(members, [m["weight"] for m in spec["members"]], list(spec["labels"]), gazetteer)

    def predict(self, pairs: list[tuple[str, str]]) -> list[dict]:
        probs = sum(weight * _member_probs(member, pairs, self.labels)
                    for member, weight in zip(self.members, self.weights) if weight > 0)  # fmt: skip
        probs = np.asarray(probs).reshape(len(pairs), len(self.labels))
        return [{"label": self.labels[int(row.argmax())], "probs": dict(zip(self.labels, map(float, row)))}
                for row in probs]  # fmt: skip
