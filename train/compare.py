"""Several evaluated runs (or seed groups) side by side: metrics, deltas, config diff and a paired bootstrap test."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import yaml

from .data import read_json
from .evaluation import read_predictions
from .metrics import macro_f1

log = logging.getLogger(__name__)

N_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
SUMMARY_METRICS = ("accuracy", "macro_f1", "f_avg", "ece")
# Shown when every run's evaluation has them: swap copies were made; the data marks hard pairs (realdev).
OPTIONAL_METRICS = ("macro_f1_not_hard", "swap_consistency", "swap_macro_f1")
PER_CLASS_STATS = ("precision", "recall", "f1")


class CompareError(ValueError):
    """Runs that cannot be compared fairly (different data, missing evaluations)."""


@dataclass
class Entry:
    """One column of the comparison: a single run, or a seed group (several runs of one config)."""

    name: str
    runs: list[Path]
    config: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)  # one metrics.json per run
    predicted: list[np.ndarray] = field(default_factory=list)  # label ids per run, in the shared id order

    @property
    def is_group(self) -> bool:
        return len(self.runs) > 1


# --- seed groups ----------------------------------------------------------------------------------------------


def mean_std(values: Sequence[float]) -> dict[str, Any]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of one metric over seeds."""
    values = [float(v) for v in values]
    std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return {"mean": float(np.mean(values)), "std": std, "n": len(values), "values": values}


def aggregate_seeds(run_dirs: list[Path], seeds: list[int], out_path: Path) -> dict:
    """Write <output_dir>/<run_name>-seeds.json: the runs of one config and their dev metrics as mean ± std."""
    dev = [read_json(run / "metrics.json")["best_dev"] for run in run_dirs]
    keys = [key for key in dev[0] if all(isinstance(row.get(key), (int, float)) for row in dev)]
    summary = {
        "seeds": seeds,
        "runs": [str(run) for run in run_dirs],
        "dev": {key: mean_std([row[key] for row in dev]) for key in keys},
    }
    out_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary


# --- loading --------------------------------------------------------------------------------------------------


def load_entry(spec: str | Path, eval_name: str) -> Entry:
    """A run folder, or a `*-seeds.json` written by `stance train --seeds` (a group of runs)."""
    path = Path(spec)
    if path.is_file() and path.name.endswith(".json"):
        group = read_json(path)
        if not isinstance(group, dict) or not group.get("runs"):
            raise CompareError(f"{path}: not a seed-group file (no 'runs' list)")
        runs = [Path(run) for run in group["runs"]]
        entry = Entry(path.name.removesuffix(".json"), runs)
    elif path.is_dir():
        entry = Entry(path.name, [path])
    else:
        raise CompareError(f"{path}: neither a run folder nor a seed-group .json file")
    configs = []
    for run in entry.runs:
        eval_dir = run / "eval" / eval_name
        if not (eval_dir / "metrics.json").is_file():
            raise CompareError(f"{run}: no evaluation '{eval_name}' (run `stance evaluate {run} --split {eval_name}` "
                               f"or pass --eval NAME)")  # fmt: skip
        entry.metrics.append(read_json(eval_dir / "metrics.json"))
        config_path = run / "config.yaml"
        configs.append(yaml.safe_load(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {})
    entry.config = _flatten(configs[0])
    if entry.is_group:  # members differ only by seed and name: show the group's seeds instead
        for key in ("training.seed", "run_name"):
            values = [_flatten(c).get(key) for c in configs]
            entry.config[key] = ",".join(str(v) for v in values)
    return entry


def _flatten(tree: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in (tree or {}).items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check_same_data(entries: list[Entry]) -> dict:
    seen: dict[str, list[str]] = {}
    for entry in entries:
        for run, metrics in zip(entry.runs, entry.metrics):
            seen.setdefault(metrics["data"]["sha256"], []).append(f"{run} ({metrics['data']['path']})")
    if len(seen) > 1:
        lines = [f"  sha256 {sha[:12]}…: {', '.join(runs)}" for sha, runs in seen.items()]
        raise CompareError("refusing to compare runs evaluated on different data:\n" + "\n".join(lines))
    return entries[0].metrics[0]["data"]


# --- the paired bootstrap -------------------------------------------------------------------------------------


def _macro_f1_batch(codes: np.ndarray, index: np.ndarray, num_labels: int) -> np.ndarray:
    """Macro-F1 of each resample (one row of `index`) from gold*K+predicted codes, via confusion-matrix counts."""
    k2 = num_labels * num_labels
    rows = index.shape[0]
    flat = (codes[index] + np.arange(rows)[:, None] * k2).ravel()
    confusion = np.bincount(flat, minlength=rows * k2).reshape(rows, num_labels, num_labels)
    tp = np.diagonal(confusion, axis1=1, axis2=2)
    denominator = confusion.sum(axis=2) + confusion.sum(axis=1)  # 2tp + fn + fp
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(denominator > 0, 2 * tp / denominator, 0.0)  # zero_division=0, as in evaluation.macro_f1
    return f1.mean(axis=1)


def paired_bootstrap(
    gold: np.ndarray,
    first: list[np.ndarray],
    other: list[np.ndarray],
    num_labels: int,
    n_resamples: int = N_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, float]:
    """95% CI and two-sided p-value of macro-F1(other) − macro-F1(first), resampling the same examples for both.

    Each side is a list of prediction arrays (one run, or every run of a seed group, whose score is the mean
    macro-F1 of its runs on the resample). The p-value is two-sided, from the same resamples as the percentile
    CI (Koehn 2004's paired bootstrap): twice the smaller share of resamples on either side of 0, with the +1
    correction, capped at 1. So "the CI excludes 0" and "p < 0.05" agree, which a shifted-null p-value does not
    guarantee when a score sits near its ceiling of 1.
    """
    gold = np.asarray(gold)
    rng = np.random.default_rng(seed)
    n = len(gold)

    def scores(side: list[np.ndarray], index: np.ndarray) -> np.ndarray:
        return np.mean([_macro_f1_batch(gold * num_labels + p, index, num_labels) for p in side], axis=0)

    everything = np.arange(n)[None, :]
    observed = float(scores(other, everything)[0] - scores(first, everything)[0])
    diffs = []
    for start in range(0, n_resamples, 200):  # chunks keep the index matrix small on big test sets
        index = rng.integers(0, n, size=(min(200, n_resamples - start), n))
        diffs.append(scores(other, index) - scores(first, index))
    diffs = np.concatenate(diffs)
    tail = min(int(np.sum(diffs <= 0)), int(np.sum(diffs >= 0)))
    return {
        "delta": observed,
        "ci_low": float(np.percentile(diffs, 2.5)),
        "ci_high": float(np.percentile(diffs, 97.5)),
        "p_value": min(1.0, 2 * (tail + 1) / (n_resamples + 1)),
        "n_resamples": n_resamples,
        "seed": seed,
    }


# --- the comparison -------------------------------------------------------------------------------------------


def compare(specs: list[str | Path], eval_name: str = "test", n_resamples: int = N_RESAMPLES,
            seed: int = BOOTSTRAP_SEED) -> dict[str, Any]:  # fmt: skip
    """Everything the comparison report shows, as one JSON-able dict."""
    if len(specs) < 2:
        raise CompareError("give at least two runs (or seed groups) to compare")
    if n_resamples < 1000:
        raise CompareError(f"n_resamples must be at least 1000 for a stable 95% interval; got {n_resamples}")
    entries = [load_entry(spec, eval_name) for spec in specs]
    data = _check_same_data(entries)
    labels = entries[0].metrics[0]["labels"]
    gold_by_id: dict[str, str] = {}
    ids: list[str] = []
    for entry in entries:
        for run in entry.runs:
            rows = read_predictions(run / "eval" / eval_name)
            by_id = {row["id"]: row for row in rows}
            if not ids:
                ids = sorted(by_id)
                gold_by_id = {key: by_id[key]["gold"] for key in ids}
            if sorted(by_id) != ids or any(by_id[key]["gold"] != gold_by_id[key] for key in ids):
                raise CompareError(
                    f"{run}: its predictions cover other examples or gold labels than {entries[0].runs[0]}"
                )
            entry.predicted.append(np.array([labels.index(by_id[key]["predicted"]) for key in ids]))
    gold = np.array([labels.index(gold_by_id[key]) for key in ids])

    columns = [_summarise(entry, labels) for entry in entries]
    keys = sorted(set().union(*(entry.config for entry in entries)))
    config_diff = {
        key: [entry.config.get(key) for entry in entries]
        for key in keys
        if len({json.dumps(entry.config.get(key), sort_keys=True) for entry in entries}) > 1
    }
    tests = [
        {"first": entries[0].name, "other": entry.name,
         **paired_bootstrap(gold, entries[0].predicted, entry.predicted, len(labels), n_resamples, seed)}
        for entry in entries[1:]
    ]  # fmt: skip
    # predictions.jsonl and metrics.json of a run must tell the same story (a hand-edited or stale file would not).
    for entry in entries:
        for run, predicted, metrics in zip(entry.runs, entry.predicted, entry.metrics):
            if abs(macro_f1(gold, predicted, len(labels)) - metrics["macro_f1"]) > 1e-9:
                raise CompareError(
                    f"{run}/eval/{eval_name}: metrics.json disagrees with predictions.jsonl; re-evaluate"
                )
    return {"eval": eval_name, "data": data, "labels": labels, "entries": columns, "config_diff": config_diff,
            "bootstrap": tests}  # fmt: skip


def _summarise(entry: Entry, labels: list[str]) -> dict[str, Any]:
    """One column: every number as mean ± std over the entry's runs (a single run has std 0 and n 1)."""
    def over_runs(get) -> dict[str, Any]:
        return mean_std([get(m) for m in entry.metrics])

    support = {c: row["support"] for m in entry.metrics for c, row in m["per_country"].items()}
    countries = sorted(support, key=lambda c: (-support[c], c))  # largest first, as in an evaluation report
    return {
        "name": entry.name,
        "runs": [str(run) for run in entry.runs],
        "group": entry.is_group,
        "n": entry.metrics[0]["n"],
        "summary": {
            key: over_runs(lambda m, key=key: m["calibration"]["ece"] if key == "ece" else m[key])
            for key in SUMMARY_METRICS
        } | {
            key: over_runs(lambda m, key=key: m[key])
            for key in OPTIONAL_METRICS
            if all(m.get(key) is not None for m in entry.metrics)
        },
        "per_class": {
            name: {stat: over_runs(lambda m, n=name, s=stat: m["per_class"][n][s]) for stat in PER_CLASS_STATS}
            for name in labels
        },
        "per_country": {
            country: {
                "support": entry.metrics[0]["per_country"].get(country, {}).get("support", 0),
                "macro_f1": over_runs(lambda m, c=country: m["per_country"].get(c, {}).get("macro_f1", 0.0)),
            }
            for country in countries
        },
    }


def write_comparison(result: dict, markdown_path: Path | None = None, html_path: Path | None = None) -> str:
    from .report import comparison_html, comparison_markdown

    text = comparison_markdown(result)
    if markdown_path:
        markdown_path.write_text(text, encoding="utf-8")
    if html_path:
        html_path.write_text(comparison_html(result), encoding="utf-8")
    return text

