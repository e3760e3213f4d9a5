"""Score per-article verdicts (one stance per article and country, train/batch.py) against a gold file.

`stance evaluate RUN --articles DIR` predicts every page in DIR with the batch pipeline, then compares each
(article, country) verdict with DIR/gold.jsonl. Two gold layouts are read:
  {"article": "01_x.txt", "country": "Pháp", "label": "pro_ukraine", ...}          (data/articles)
  {"file": "x.txt", "countries": {"Pháp": "pro_ukraine", "Nga": "pro_russia"}, ...}  (realdev articles)
A gold country that the pipeline never found in the article counts as a `none` verdict (no evidence, no
stance). Verdicts for countries the gold file does not list are not scored. Because the sentence
predictions are kept, the same run also shows how the verdicts would change with other `min_evidence`
thresholds (the sweep), which is how the default threshold is chosen.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from .batch import MIN_EVIDENCE, _read_rows, aggregate, iter_documents, predict_documents
from .data import LABELS, DataError, read_jsonl

SWEEP = (0.0, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)


def read_gold(path: str | Path) -> dict[tuple[str, str], str]:
    """(article file, country) → gold verdict, from either gold layout; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no gold file (expected one verdict per article and country)")
    gold: dict[tuple[str, str], str] = {}
    for number, row in enumerate(read_jsonl(path, fields=()), start=1):
        if isinstance(row.get("countries"), dict) and isinstance(row.get("file"), str):
            gold.update({(row["file"], country): label for country, label in row["countries"].items()})
        elif all(isinstance(row.get(key), str) for key in ("article", "country", "label")):
            gold[(row["article"], row["country"])] = row["label"]
        else:
            raise DataError(f"{path}: verdict {number}: expected 'article', 'country', 'label' or 'file', 'countries'")
        if not set(gold.values()) <= set(LABELS):
            raise DataError(f"{path}: verdict {number}: unknown label (expected one of {', '.join(LABELS)})")
    if not gold:
        raise DataError(f"{path}: no verdicts")
    return gold


def verdicts(sentence_rows: list[dict], labels: list[str], min_evidence: float, top_k: int = 3) -> dict:
    """(article, country) → aggregate() verdict, from sentences.jsonl rows of a batch run."""
    grouped: dict[tuple[str, str], list[dict]] = {}
    for row in sentence_rows:
        grouped.setdefault((row["article"], row["country"]), []).append(row)
    return {key: aggregate(rows, labels, top_k, min_evidence) for key, rows in grouped.items()}


def score_verdicts(gold: dict[tuple[str, str], str], predicted: dict[tuple[str, str], dict],
                   labels: list[str]) -> dict[str, Any]:  # fmt: skip
    """Accuracy, macro-F1 (over the labels that occur in gold or predictions), confusion and the wrong pairs."""
    keys = sorted(gold)
    guess = [predicted[key]["label"] if key in predicted else "none" for key in keys]
    truth = [gold[key] for key in keys]
    wrong = [
        {"article": key[0], "country": key[1], "gold": gold[key], "predicted": label,
         "found": key in predicted,
         "evidence": predicted[key]["evidence"] if key in predicted else []}
        for key, label in zip(keys, guess) if label != gold[key]
    ]  # fmt: skip
    return {
        "n": len(keys),
        "accuracy": float(accuracy_score(truth, guess)),
        "macro_f1": float(f1_score(truth, guess, average="macro", zero_division=0)),
        "not_found": sum(key not in predicted for key in keys),
        "confusion": confusion_matrix(truth, guess, labels=labels).tolist(),
        "wrong": wrong,
    }


def evaluate_articles(run_dir: str | Path, articles: str | Path, predictor=None, min_evidence: float | None = None,
                      name: str | None = None) -> Path:  # fmt: skip
    """Predict every page in `articles`, score the verdicts against its gold.jsonl, and write
    RUN/eval/<name>/ (default articles-<folder>): metrics.json, report.md, report.html, and the batch outputs
    under batch/. Returns that folder."""
    from .evaluation import swap_gazetteer
    from .predict import load_predictor
    from .report import write_article_reports

    run_dir, articles = Path(run_dir), Path(articles)
    if not articles.is_dir():
        raise FileNotFoundError(f"{articles}: not a folder of articles")
    gold = read_gold(articles / "gold.jsonl")
    min_evidence = MIN_EVIDENCE if min_evidence is None else min_evidence
    predictor = predictor or load_predictor(run_dir)
    out_dir = run_dir / "eval" / (name or f"articles-{articles.resolve().name}")
    out_dir.mkdir(parents=True, exist_ok=True)
    predict_documents(predictor, iter_documents([str(articles)]), swap_gazetteer(predictor), out_dir / "batch",
                      force=True, min_evidence=min_evidence, progress=False)  # fmt: skip
    sentences = list(_read_rows(out_dir / "batch" / "sentences.jsonl"))
    labels = list(predictor.labels)
    metrics = {
        "run": str(run_dir),
        "name": out_dir.name,
        "articles": str(articles),
        "labels": labels,
        "min_evidence": min_evidence,
        **score_verdicts(gold, verdicts(sentences, labels, min_evidence), labels),
        "sweep": [
            {"min_evidence": t, **{k: v for k, v in score_verdicts(gold, verdicts(sentences, labels, t), labels).items()
                                   if k in ("accuracy", "macro_f1")}}
            for t in SWEEP
        ],  # fmt: skip
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    write_article_reports(metrics, out_dir)
    return out_dir
