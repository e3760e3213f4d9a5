"""Read the stance JSONL files into a `datasets.DatasetDict`, with errors that name the file and line."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Callable

from datasets import Dataset, DatasetDict

# The order is the model's label ids; it is written into every run, and predict reads it back from there.
LABELS = ("pro_ukraine", "pro_russia", "neutral", "none")
REQUIRED_FIELDS = ("id", "text", "country", "label")


class DataError(ValueError):
    """A data file that cannot be used; the message names the file and, where known, the line."""


def read_jsonl(path: str | Path, fields: tuple[str, ...] = REQUIRED_FIELDS) -> list[dict[str, Any]]:
    """Read one example per line; blank lines are skipped, anything else that is not a JSON object fails.

    Each of `fields` must be non-empty text (a numeric id, 5 rather than "5", is read as its string).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found" + (" (it is a folder)" if path.is_dir() else ""))
    rows = []
    with path.open("rb") as handle:  # bytes, so that a non-UTF-8 line is reported with its own number
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{number}: not UTF-8 text (save the file as UTF-8)") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            if isinstance(row.get("id"), int) and not isinstance(row["id"], bool):
                row["id"] = str(row["id"])
            wrong = [f"{key} ({type(row[key]).__name__})" for key in fields
                     if row.get(key) is not None and not isinstance(row[key], str)]  # fmt: skip
            if wrong:
                raise DataError(f"{path}:{number}: field(s) must be text: {', '.join(wrong)}")
            missing = [key for key in fields if not isinstance(row.get(key), str) or not row[key].strip()]
            if missing:
                raise DataError(f"{path}:{number}: missing or empty field(s): {', '.join(missing)}")
            if "label" in fields and row["label"] not in LABELS:
                raise DataError(f"{path}:{number}: unknown label {row['label']!r} (expected one of {', '.join(LABELS)})")
            rows.append(row)
    if not rows:
        raise DataError(f"{path}: no examples")
    return rows


def read_json(path: str | Path) -> Any:
    """One JSON file we wrote (run.json, metrics.json, a seed group); a damaged one fails naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{path}: damaged JSON file ({err}); restore it or train the run again") from None


def load_splits(paths: dict[str, str], augment: Callable[[list[dict]], list[dict]] | None = None) -> DatasetDict:
    """Load each named split (train/dev/test) as a Dataset with columns id, text, country, label (int);
    `augment` rewrites the train split's rows (counterfactual copies) before anything else sees them."""
    splits = {}
    for name, path in paths.items():
        rows = read_jsonl(path)
        if augment is not None and name == "train":
            rows = augment(rows)
        splits[name] = Dataset.from_dict(
            {
                "id": [row["id"] for row in rows],
                "text": [row["text"] for row in rows],
                "country": [row["country"] for row in rows],
                "label": [LABELS.index(row["label"]) for row in rows],
            }
        )
    return DatasetDict(splits)


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    tmp.replace(path)


def write_json(path: str | Path, value) -> None:
    Path(path).write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def split_files(data) -> dict[str, dict]:
    """Path and sha256 of each split file of a config's `data` section that exists, for run.json."""
    return {split: {"path": path, "sha256": sha256_file(path)}
            for split, path in (("train", data.train), ("dev", data.dev), ("test", data.test))
            if Path(path).is_file()}  # fmt: skip
