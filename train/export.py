"""`stance export RUN --onnx [--int8]`: the run's model as ONNX (fp32, and int8 by dynamic quantization), checked
against the torch model before it may be used, and `OnnxModel`, which runs it under ONNX Runtime inside the transformer predictor.

Everything lands in RUN/onnx/: model.onnx, model.int8.onnx (with --int8) and export.json, which records each
file's sha256, the sha256 of the torch weights it came from, and the accuracy gate: macro-F1 of each export on
the run's test split and on realdev must be within GATE of the torch fp32 model's, or the export is marked
unusable and `--backend onnx|onnx-int8` refuses it with the reason. The gate is two-sided: an export that
scores much higher is no longer the model that was evaluated either.

The exporter is torch.onnx's TorchScript path (dynamo=False) with dynamic batch and sequence axes: on the tiny
model it exports in about 1 s against about 7 s for the dynamo path, writes one self-contained file (the
dynamo path puts weights in a side file by default), and needs no onnxscript. Both give the same logits here
(max |diff| < 1e-6 on the tiny model).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import os
import warnings
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from .data import LABELS, read_jsonl, sha256_file
from .metrics import macro_f1

log = logging.getLogger(__name__)

EXPORT_DIR, MANIFEST = "onnx", "export.json"
FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}  # backend name → file in RUN/onnx/
BACKENDS = ("torch", *FILES)
GATE = 0.005  # macro-F1 points / 100: "within 0.5 point of fp32"
OPSET = 17
DEFAULT_REALDEV = Path(__file__).resolve().parents[2] / "shared" / "realdev" / "sentences.jsonl"
SOURCE_WEIGHTS = "model.safetensors"


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # Same thread budget as torch (the CLI's --threads sets both), so backends compare like for like.
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxModel:
    """Stands in for the torch model inside the transformer predictor (train/transformer.py): called with the padded batch, returns `.logits`."""

    def __init__(self, session, config):
        self.session = session
        self.config = config  # the transformers config (labels), as the torch model carries it
        self.input_names = [item.name for item in session.get_inputs()]

    def __call__(self, **batch):
        feeds = {name: np.asarray(batch[name], dtype=np.int64) for name in self.input_names}
        return SimpleNamespace(logits=torch.from_numpy(self.session.run(["logits"], feeds)[0]))

    def eval(self) -> "OnnxModel":
        return self

    @classmethod
    def from_run(cls, run_dir: str | Path, backend: str) -> "OnnxModel":
        """The export for `backend` ("onnx" or "onnx-int8"), only if its gate passed and nothing changed since."""
        from transformers import AutoConfig

        run_dir = Path(run_dir)
        manifest_path = run_dir / EXPORT_DIR / MANIFEST
        hint = f"run `stance export {run_dir} --onnx{' --int8' if backend == 'onnx-int8' else ''}` first"
        if backend not in FILES:
            raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{run_dir}: no ONNX export ({manifest_path} missing); {hint}")
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        variant = manifest["variants"].get(backend)
        path = run_dir / EXPORT_DIR / FILES[backend]
        if variant is None or not path.is_file():
            raise FileNotFoundError(f"{path}: not exported; {hint}")
        if not variant["usable"]:
            raise RuntimeError(f"{path}: export marked unusable by `stance export`: {variant['reason']}")
        if sha256_file(path) != variant["sha256"]:
            raise RuntimeError(f"{path}: sha256 differs from {manifest_path}; the file changed since export: {hint}")
        weights = run_dir / "model" / SOURCE_WEIGHTS
        if weights.is_file() and sha256_file(weights) != manifest["source"]["sha256"]:
            raise RuntimeError(f"{weights}: the torch model changed since it was exported; {hint}")
        return cls(_session(path), AutoConfig.from_pretrained(run_dir / "model"))


def export_onnx(run_dir: str | Path, int8: bool = False, realdev: str | Path | None = DEFAULT_REALDEV) -> dict:
    """Export RUN's model to RUN/onnx/ (fp32, and int8 when asked), gate each file on accuracy, write export.json
    last (an interrupted export leaves no manifest, so nothing half-done is ever used). Returns the manifest."""
    from .predict import load_predictor

    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a run folder (no run.json)")
    if json.loads(info_path.read_text(encoding="utf-8")).get("model_type") == "tfidf":
        raise ValueError(f"{run_dir}: a TF-IDF run has no network to export; it predicts with --backend torch")
    predictor = load_predictor(run_dir)
    out = run_dir / EXPORT_DIR
    out.mkdir(exist_ok=True)
    for name in (MANIFEST, *FILES.values()):
        (out / name).unlink(missing_ok=True)  # an older export of another model must not survive next to this one

    inputs = _export_fp32(predictor, out / FILES["onnx"])
    if int8:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        temporary = out / (FILES["onnx-int8"] + ".tmp")
        # Dynamic quantization: int8 weights of every MatMul, one scale per output channel; activations quantized
        # per batch at run time. The embedding tables stay fp32. On an e5-small run (test macro-F1 0.7413 in
        # torch) the variants scored: all ops per tensor (the default) 0.7280, all ops per channel 0.7329,
        # MatMul per tensor 0.7252, MatMul per channel 0.7469: quantizing the 250k-row word embeddings costs the
        # most, per-channel scales recover the rest. It logs one INFO line per tensor on the root logger.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(out / FILES["onnx"], temporary, weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])  # fmt: skip
        finally:
            logging.disable(logging.NOTSET)
        os.replace(temporary, out / FILES["onnx-int8"])

    checks, notes = _gate_data(run_dir, realdev)
    variants = {}
    for backend in [name for name in FILES if (out / FILES[name]).is_file()]:
        onnx_predictor = dataclasses.replace(predictor, model=OnnxModel(_session(out / FILES[backend]), predictor.model.config))
        variants[backend] = _check(backend, out / FILES[backend], predictor, onnx_predictor, checks)
    weights = run_dir / "model" / SOURCE_WEIGHTS
    manifest = {
        "source": {"path": f"model/{SOURCE_WEIGHTS}", "sha256": sha256_file(weights) if weights.is_file() else None},
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "opset": OPSET,
        "inputs": inputs,
        "dynamic_axes": ["batch", "sequence"],
        "gate": {"metric": "macro_f1", "max_abs_delta": GATE, "data": {k: v["path"] for k, v in checks.items()}},
        "notes": notes,
        "threads": torch.get_num_threads(),
        "versions": {name: version(name) for name in ("torch", "onnx", "onnxruntime")},
        "variants": variants,
    }
    temporary = out / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, out / MANIFEST)
    return manifest


def _export_fp32(predictor, path: Path) -> list[str]:
    """Trace the model on two pairs of different lengths, with batch and sequence axes left dynamic."""
    sample = [("Nga", "Nga tấn công Ukraine."), ("Pháp", "Pháp tuyên bố tiếp tục viện trợ quân sự cho Ukraine.")]
    encoded = predictor._encode(sample)
    batch = predictor.tokenizer.pad(dict(encoded), return_tensors="pt")
    accepted = inspect.signature(predictor.model.forward).parameters
    names = [name for name in batch.keys() if name in accepted]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    temporary = path.with_name(path.name + ".tmp")
    with torch.inference_mode(), warnings.catch_warnings():
        # The tracer warns about Python branches on shapes in transformers' masking code: they take the same
        # path for every batch and length (checked: same labels as torch on every gate example).
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index")
        warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript path: chosen, see above
        torch.onnx.export(
            predictor.model, (), str(temporary), kwargs={name: batch[name] for name in names},
            input_names=names, output_names=["logits"], dynamic_axes={**axes, "logits": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    os.replace(temporary, path)
    return names


def _gate_data(run_dir: Path, realdev) -> tuple[dict, list[str]]:
    """The gate's data: the run's test split and realdev, each read once with its gold label ids."""
    from .config import load_config

    sources = {"test": Path(load_config(run_dir / "config.yaml").data.test)}
    notes = []
    if realdev and Path(realdev).is_file():
        sources["realdev"] = Path(realdev)
    else:
        notes.append(f"realdev: {realdev or '(none given)'} not found; checked on the test split only")
    checks = {}
    for name, path in sources.items():
        if not path.is_file():
            notes.append(f"{name}: {path} not found")
            continue
        rows = read_jsonl(path)
        checks[name] = {"path": str(path), "pairs": [(r["country"], r["text"]) for r in rows],
                        "gold": [LABELS.index(r["label"]) for r in rows]}  # fmt: skip
    return checks, notes


def _check(backend: str, path: Path, torch_predictor, onnx_predictor, checks: dict) -> dict:
    results, failures = {}, []
    for name, data in checks.items():
        if "torch" not in data:  # the torch model's score is computed once for every export
            data["torch"] = [torch_predictor.labels.index(o["label"]) for o in torch_predictor.predict(data["pairs"])]
        predicted = [onnx_predictor.labels.index(o["label"]) for o in onnx_predictor.predict(data["pairs"])]
        reference, score = macro_f1(data["gold"], data["torch"]), macro_f1(data["gold"], predicted)
        agree = float(np.mean(np.array(predicted) == np.array(data["torch"])))
        results[name] = {"n": len(predicted), "torch_macro_f1": round(reference, 4), "macro_f1": round(score, 4),
                         "delta": round(score - reference, 4), "same_label": round(agree, 4)}  # fmt: skip
        if abs(score - reference) > GATE:
            failures.append(f"{name} macro-F1 {score:.4f} vs torch fp32 {reference:.4f} (|Δ| > {GATE})")
    if not checks:
        failures.append("no test split or realdev file to check it on")
    reason = "; ".join(failures)
    log.info("%s: %s", path, f"unusable: {reason}" if failures else f"usable: {results}")
    return {"file": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size, "usable": not failures,
            "reason": reason, "checks": results}  # fmt: skip
