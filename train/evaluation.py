"""Stance metrics and error analysis on scikit-learn, and `evaluate_run`: one run on one data file → RUN/eval/<name>/.

Every number a report or a comparison shows is computed here, once; the `evaluate` modules under metrics/
and train/compare.py call these functions rather than re-implementing them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from .data import LABELS, read_jsonl, sha256_file, write_jsonl
from .metrics import macro_f1
from .swap import SWAP_KEY, swap_set

log = logging.getLogger(__name__)

# SemEval-2016 Task 6 scores stance by the mean F1 of the two "taking a side" classes (FAVOR, AGAINST),
# leaving out NONE; here the two sides are the two belligerents.
F_AVG_LABELS = ("pro_ukraine", "pro_russia")
ECE_BINS = 10
TOP_ERRORS = 20
SWAPS = 3  # country-swap copies per third-country example in every evaluation


def f_avg(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str] = LABELS) -> float:
    """Mean F1 of pro_ukraine and pro_russia (SemEval-2016 F_avg)."""
    ids = [list(labels).index(name) for name in F_AVG_LABELS]
    return float(f1_score(gold, predicted, labels=ids, average="macro", zero_division=0))


def per_class(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str] = LABELS) -> dict[str, dict]:
    precision, recall, f1, support = precision_recall_fscore_support(
        gold, predicted, labels=list(range(len(labels))), zero_division=0
    )
    return {
        name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for name, p, r, f, s in zip(labels, precision, recall, f1, support)
    }


def per_country(gold: Sequence[int], predicted: Sequence[int], countries: Sequence[str]) -> dict[str, dict]:
    """Support, accuracy and macro-F1 per target country, largest support first.

    A country's macro-F1 averages over the labels that occur in its own gold or predicted labels: most countries
    show only one or two stances, and counting the others as F1 0 would make every country look bad.
    """
    gold, predicted, countries = np.asarray(gold), np.asarray(predicted), np.asarray(countries)
    table = {}
    for country in sorted(set(countries.tolist()), key=lambda c: (-int((countries == c).sum()), c)):
        mask = countries == country
        table[country] = {
            "support": int(mask.sum()),
            "accuracy": float(accuracy_score(gold[mask], predicted[mask])),
            "macro_f1": float(f1_score(gold[mask], predicted[mask], average="macro", zero_division=0)),
        }
    return table


def reliability(probs: np.ndarray, gold: Sequence[int], n_bins: int = ECE_BINS) -> dict[str, Any]:
    """Expected calibration error of the top-class confidence, with the bins of a reliability diagram.

    Bins are equal-width over (0, 1]: bin i holds confidences in (i/n, (i+1)/n], and a confidence of exactly 0
    goes to the first. ECE = Σ_bins (n_bin / N) · |accuracy_bin − mean confidence_bin|.
    """
    probs = np.asarray(probs, dtype=float)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == np.asarray(gold)).astype(float)
    index = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    bins, ece = [], 0.0
    for i in range(n_bins):
        mask = index == i
        count = int(mask.sum())
        row = {"lower": i / n_bins, "upper": (i + 1) / n_bins, "count": count, "accuracy": None, "confidence": None}
        if count:
            row["accuracy"] = float(correct[mask].mean())
            row["confidence"] = float(confidence[mask].mean())
            ece += count / len(confidence) * abs(row["accuracy"] - row["confidence"])
        bins.append(row)
    return {"ece": float(ece), "n_bins": n_bins, "bins": bins}


def confident_errors(rows: list[dict], k: int = TOP_ERRORS) -> list[dict]:
    """The k wrong predictions the model was most sure of: these are where a label or the model is most wrong."""
    wrong = [row for row in rows if row["predicted"] != row["gold"]]
    wrong.sort(key=lambda row: (-row["probs"][row["predicted"]], row["id"]))
    return [
        {
            "id": row["id"], "text": row["text"], "country": row["country"], "gold": row["gold"],
            "predicted": row["predicted"], "confidence": float(row["probs"][row["predicted"]]),
        }
        for row in wrong[:k]
    ]  # fmt: skip


def is_hard(example: dict) -> bool:
    """A pair its annotator marked contestable: a note starting "hard:" (../shared/realdev's convention)."""
    return str(example.get("note") or "").startswith("hard:")


def not_hard_metrics(rows: list[dict], examples: list[dict], labels: Sequence[str] = LABELS) -> dict | None:
    """Accuracy and macro-F1 without the pairs marked hard (realdev asks for scores with and without them);
    None when no example is marked."""
    kept = [row for row, example in zip(rows, examples) if not is_hard(example)]
    if len(kept) == len(rows) or not kept:
        return None
    scores = compute_metrics(kept, labels)  # the same scoring as the whole set's
    return {"n": len(kept), "n_hard": len(rows) - len(kept), "accuracy": scores["accuracy"],
            "macro_f1": scores["macro_f1"]}  # fmt: skip


def compute_metrics(rows: list[dict], labels: Sequence[str] = LABELS) -> dict[str, Any]:
    """Every metric of one evaluation, from prediction rows (id, text, country, gold, predicted, probs by label)."""
    if not rows:
        raise ValueError("no predictions to score")
    labels = list(labels)
    gold = [labels.index(row["gold"]) for row in rows]
    predicted = [labels.index(row["predicted"]) for row in rows]
    probs = np.array([[row["probs"][name] for name in labels] for row in rows])
    return {
        "n": len(rows),
        "labels": labels,
        "accuracy": float(accuracy_score(gold, predicted)),
        "macro_f1": macro_f1(gold, predicted, len(labels)),
        "f_avg": f_avg(gold, predicted, labels),
        "per_class": per_class(gold, predicted, labels),
        "per_country": per_country(gold, predicted, [row["country"] for row in rows]),
        "confusion": confusion_matrix(gold, predicted, labels=list(range(len(labels)))).tolist(),
        "calibration": reliability(probs, gold),
        "confident_errors": confident_errors(rows),
    }


def swap_metrics(rows: list[dict], copies: list[dict], labels: Sequence[str] = LABELS, k: int = TOP_ERRORS) -> dict:
    """Country-swap invariance from prediction rows of the originals and of their swap copies (train/swap.py).

    consistency: share of copies predicted the same as their original; macro_f1: of the copies against the
    (kept) gold; original_macro_f1: of the originals that have copies, the same examples unswapped. Worst
    flips: copies whose prediction changed, the most confident first."""
    if not copies:
        return {"n_originals": 0, "n_copies": 0, "consistency": None, "macro_f1": None, "original_macro_f1": None,
                "worst_flips": []}  # fmt: skip
    labels = list(labels)
    by_id = {row["id"]: row for row in rows}
    originals = [by_id[key] for key in dict.fromkeys(copy["swap_of"] for copy in copies)]
    same = [copy["predicted"] == by_id[copy["swap_of"]]["predicted"] for copy in copies]
    flips = [copy for copy, kept in zip(copies, same) if not kept]
    flips.sort(key=lambda copy: (-copy["probs"][copy["predicted"]], copy["id"]))
    return {
        "n_originals": len(originals),
        "n_copies": len(copies),
        "consistency": float(np.mean(same)),
        "macro_f1": macro_f1([labels.index(c["gold"]) for c in copies], [labels.index(c["predicted"]) for c in copies],
                             len(labels)),
        "original_macro_f1": macro_f1([labels.index(r["gold"]) for r in originals],
                                      [labels.index(r["predicted"]) for r in originals], len(labels)),
        "worst_flips": [
            {"id": copy["swap_of"], "text": by_id[copy["swap_of"]]["text"], "swapped_text": copy["text"],
             "from": copy["swapped_from"], "to": copy["country"], "gold": copy["gold"],
             "original": by_id[copy["swap_of"]]["predicted"], "swapped": copy["predicted"],
             "confidence": float(copy["probs"][copy["predicted"]])}
            for copy in flips[:k]
        ],
    }  # fmt: skip


def metric_info(description: str, inputs_description: str, citation: str = "", probabilities: bool = False):
    """The `evaluate.MetricInfo` of a local metric module in metrics/: predicted label ids (or, with
    `probabilities`, class probabilities per example) against gold label ids."""
    import datasets
    import evaluate

    predictions = datasets.Sequence(datasets.Value("float64")) if probabilities else datasets.Value("int32")
    return evaluate.MetricInfo(
        description=description,
        citation=citation,
        inputs_description=inputs_description,
        features=datasets.Features({"predictions": predictions, "references": datasets.Value("int32")}),
    )


def eval_folder(run_dir: Path, name: str, data: str | Path, force: bool = False) -> Path:
    """RUN/eval/<name>/ for an evaluation on `data`: refuse one that holds another data file's evaluation
    (say, --data elsewhere/test.jsonl against the official test split) unless `force`."""
    from .data import read_json

    out_dir = run_dir / "eval" / name
    metrics = out_dir / "metrics.json"
    if metrics.is_file() and not force:
        earlier = read_json(metrics).get("data", {})
        if earlier.get("sha256") != sha256_file(data):
            raise FileExistsError(
                f"{out_dir} holds the evaluation on {earlier.get('path')} (another file's content than {data}): "
                f"rename your data file, or pass --force to replace that evaluation"
            )
    return out_dir


def evaluate_run(run_dir: str | Path, data: str | Path | None = None, split: str = "test", predictor=None,
                 swaps: int = SWAPS, swap_seed: int = 0, name: str | None = None, force: bool = False,
                 device: str = "cpu", precision: str = "auto", backend: str = "torch") -> Path:  # fmt: skip
    """Predict every example of `data` (or of the run's own `split` file) and write RUN/eval/<name>/
    (RUN/eval/<name>-<backend>/ for an ONNX backend, so the torch model's evaluation is kept beside it).

    The folder holds predictions.jsonl, swaps.jsonl (the country-swap copies and their predictions),
    metrics.json (with the data file's sha256, which compare checks), report.md and report.html. `swaps`
    copies per third-country example (0: none) measure whether the prediction survives a change of name.
    Returns that folder.
    """
    from .config import load_config
    from .modelcard import write_model_card
    from .predict import load_predictor
    from .report import write_reports

    run_dir = Path(run_dir)
    if data is None:
        if split not in ("train", "dev", "test"):
            raise ValueError(f"unknown split {split!r}; expected train, dev or test (or pass --data FILE)")
        if not (run_dir / "config.yaml").is_file():
            raise FileNotFoundError(f"{run_dir}: not a run folder (no config.yaml)")
        data, name = getattr(load_config(run_dir / "config.yaml").data, split), name or split
    else:
        name = name or Path(data).name.removesuffix(".jsonl").removesuffix(".json")
    if backend != "torch":
        name = f"{name}-{backend}"
    examples = read_jsonl(data)
    out_dir = eval_folder(run_dir, name, data, force)
    predictor = predictor or load_predictor(run_dir, device=device, precision=precision, backend=backend)
    copies = swap_set(examples, swap_gazetteer(predictor), swaps, swap_seed) if swaps else []
    outputs = predictor.predict([(row["country"], row["text"]) for row in [*examples, *copies]])
    rows = [
        {
            "id": row["id"], "text": row["text"], "country": row["country"], "gold": row["label"],
            "predicted": out["label"], "probs": {label: float(out["probs"][label]) for label in predictor.labels},
            **({SWAP_KEY: row[SWAP_KEY], "swapped_from": row["swapped_from"]} if SWAP_KEY in row else {}),
        }
        for row, out in zip([*examples, *copies], outputs)
    ]  # fmt: skip
    rows, swapped = rows[: len(examples)], rows[len(examples) :]
    metrics = compute_metrics(rows, predictor.labels)
    swap = swap_metrics(rows, swapped, predictor.labels)
    not_hard = not_hard_metrics(rows, examples, predictor.labels)
    metrics = {
        "run": str(run_dir),
        "name": name,
        "backend": backend,
        "data": {"path": str(data), "sha256": sha256_file(data), "n": len(rows)},
        **metrics,
        "macro_f1_not_hard": not_hard and not_hard["macro_f1"],
        "not_hard": not_hard,
        "swap_consistency": swap["consistency"],
        "swap_macro_f1": swap["macro_f1"],
        "swap": {"k": swaps, "seed": swap_seed, **swap},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(out_dir / "predictions.jsonl", rows)
    write_jsonl(out_dir / "swaps.jsonl", swapped)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_reports(metrics, out_dir)
    info = run_dir / "run.json"
    if info.is_file() and json.loads(info.read_text(encoding="utf-8")).get("status") == "complete":
        write_model_card(run_dir)  # its tables list every evaluation the folder holds
    log.info("%s on %s: accuracy %.4f, macro-F1 %.4f, F_avg %.4f, ECE %.4f, swap consistency %s → %s", run_dir, name,
             metrics["accuracy"], metrics["macro_f1"], metrics["f_avg"], metrics["calibration"]["ece"],
             swap["consistency"], out_dir)  # fmt: skip
    return out_dir


def swap_gazetteer(predictor):
    """The gazetteer that finds and swaps targets: the run's own copy, else the project's."""
    from .mentions import load_gazetteer

    return getattr(predictor, "gazetteer", None) or load_gazetteer()


def read_predictions(eval_dir: str | Path) -> list[dict]:
    path = Path(eval_dir) / "predictions.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no predictions (run `stance evaluate` first)")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
