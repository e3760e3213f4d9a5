"""The model kinds (config `model.type`, run.json `model_type`), one module each, behind one small interface:

    fit(cfg, run_dir, *, command, checkpoint, device, precision) -> Path
        train into run_dir (config.yaml is already there) and write run.json, metrics.json and model/;
    load(run_dir, info, *, batch_size, device, precision, backend) -> predictor
        a finished run's predictor (info: its run.json): `.labels` and `.predict(pairs)` → [{label, probs}];
    MULTI_PROCESS: bool
        True when every torchrun process takes part in fit; else rank 0 alone fits.

train.fit and train.predict find the module here, so neither imports a kind (and no kind imports them back).
"""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS = {
    "transformer": "train.transformer",  # any transformers encoder, fine-tuned with the HF Trainer
    "tfidf": "train.tfidf",  # the classical baseline
    "ensemble": "train.ensemble",  # a weighted average of finished runs of any kind
}


def kind_module(name: str) -> ModuleType:
    if name not in KINDS:
        raise ValueError(f"unknown model type {name!r}; expected one of {', '.join(KINDS)}")
    return importlib.import_module(KINDS[name])
