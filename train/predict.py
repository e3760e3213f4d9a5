"""load_predictor(run) → a predictor for any finished run: `.labels` and `.predict(pairs)` → one
{label, probs} per (country, sentence) pair. The run's run.json names its kind (train/kinds.py), whose module
loads it."""

from __future__ import annotations

from pathlib import Path

from .data import read_json
from .kinds import kind_module


def load_predictor(run_dir: str | Path, *, batch_size: int = 64, device: str = "cpu", precision: str = "auto",
                   backend: str = "torch"):  # fmt: skip
    """Load a finished run onto `device` (cpu, cuda or auto). `backend`: torch (default), or onnx / onnx-int8
    for a transformer run exported by `stance export` (train/export.py)."""
    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no run.json)")
    info = read_json(info_path)
    kind = info.get("model_type", "transformer")  # runs from before model_type was recorded are transformers
    try:
        module = kind_module(kind)
    except ValueError as err:
        raise ValueError(f"{info_path}: {err}") from None
    return module.load(run_dir, info, batch_size=batch_size, device=device, precision=precision, backend=backend)
