"""`stance export RUN --onnx [--int8]` and `--backend onnx|onnx-int8`: the export, its accuracy gate and its refusals."""

import json
import shutil

import pytest

from train import export
from train.cli import main
from train.predict import load_predictor

from .conftest import FIXTURES, MINI, REPO, mini_overrides

SENTENCES = [
    ("Đức", "Đức công bố gói viện trợ quân sự mới cho Ukraine trị giá 500 triệu USD."),
    ("Nga", "Nga"),  # one word: the shortest sequence the dynamic axis must take
    ("Trung Quốc", "Trung Quốc kêu gọi các bên kiềm chế, đối thoại và sớm đạt được lệnh ngừng bắn ở Ukraine, "
                   "đồng thời phản đối việc mở rộng các lệnh trừng phạt đơn phương."),  # fmt: skip
]


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    """A private copy of the tiny run: the export writes into the run folder."""
    return shutil.copytree(tiny_run, tmp_path / "run")


def test_export_gates_and_backends_agree_with_torch(run_copy, tmp_path, capsys):
    missing = tmp_path / "no-realdev.jsonl"
    status = main(["export", str(run_copy), "--onnx", "--int8", "--realdev", str(missing)])
    printed = capsys.readouterr().out
    manifest = json.loads((run_copy / "onnx" / "export.json").read_text(encoding="utf-8"))
    assert f"note: realdev: {missing} not found" in printed  # skipped with a note, gate on the test split only
    assert set(manifest["variants"]) == {"onnx", "onnx-int8"} and set(manifest["inputs"]) >= {"input_ids"}
    fp32 = manifest["variants"]["onnx"]
    assert fp32["usable"] and fp32["checks"]["test"]["same_label"] == 1.0 and "realdev" not in fp32["checks"]
    for variant in manifest["variants"].values():
        assert variant["sha256"] == export.sha256_file(run_copy / "onnx" / variant["file"])
        assert variant["usable"] == (abs(variant["checks"]["test"]["delta"]) <= export.GATE)
    assert status == (0 if all(v["usable"] for v in manifest["variants"].values()) else 1)

    reference = load_predictor(run_copy).predict(SENTENCES)
    onnx = load_predictor(run_copy, backend="onnx", batch_size=2).predict(SENTENCES)  # batches of 2 and 1
    for ours, theirs in zip(onnx, reference):
        assert ours["label"] == theirs["label"]
        assert max(abs(ours["probs"][k] - theirs["probs"][k]) for k in ours["probs"]) < 1e-4

    out = tmp_path / "out"
    pages = str(FIXTURES / "html")
    assert main(["predict", str(run_copy), "--backend", "onnx", "--input", pages, "--output", str(out)]) == 0
    assert main(["predict", str(run_copy), "--input", pages, "--output", str(tmp_path / "torch")]) == 0
    by_torch = (tmp_path / "torch" / "articles.jsonl").read_text(encoding="utf-8")
    assert [json.loads(r)["label"] for r in (out / "articles.jsonl").open()] == [json.loads(r)["label"] for r in by_torch.splitlines()]

    assert main(["evaluate", str(run_copy), "--backend", "onnx"]) == 0
    assert main(["evaluate", str(run_copy)]) == 0
    ort_eval = json.loads((run_copy / "eval" / "test-onnx" / "metrics.json").read_text(encoding="utf-8"))
    torch_eval = json.loads((run_copy / "eval" / "test" / "metrics.json").read_text(encoding="utf-8"))
    assert ort_eval["backend"] == "onnx" and torch_eval["backend"] == "torch"
    assert ort_eval["macro_f1"] == pytest.approx(torch_eval["macro_f1"], abs=export.GATE)


def test_unusable_or_changed_exports_are_refused_with_the_reason(run_copy, monkeypatch, capsys):
    assert main(["predict", str(run_copy), "--backend", "onnx", "--country", "Nga", "--text", "Nga"]) == 2
    assert "no ONNX export" in capsys.readouterr().err

    monkeypatch.setattr(export, "GATE", -1.0)  # no export can be within a negative distance: the gate must fail
    assert main(["export", str(run_copy), "--onnx", "--realdev", str(MINI / "dev.jsonl")]) == 1
    variant = json.loads((run_copy / "onnx" / "export.json").read_text(encoding="utf-8"))["variants"]["onnx"]
    assert not variant["usable"] and set(variant["checks"]) == {"test", "realdev"}
    assert "test macro-F1" in variant["reason"] and "realdev macro-F1" in variant["reason"]
    assert main(["predict", str(run_copy), "--backend", "onnx", "--country", "Nga", "--text", "Nga"]) == 2
    assert f"marked unusable by `stance export`: {variant['reason']}" in capsys.readouterr().err

    monkeypatch.setattr(export, "GATE", 0.005)
    assert main(["export", str(run_copy), "--onnx", "--realdev", str(MINI / "dev.jsonl")]) == 0
    load_predictor(run_copy, backend="onnx")  # usable now
    with pytest.raises(FileNotFoundError, match="--int8"):
        load_predictor(run_copy, backend="onnx-int8")  # not asked for this time
    with (run_copy / "onnx" / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(RuntimeError, match="changed since export"):
        load_predictor(run_copy, backend="onnx")


def test_tfidf_runs_have_nothing_to_export(tmp_path):
    from train.config import load_config
    from train.fit import fit

    run = fit(load_config(REPO / "configs" / "tfidf.yaml", mini_overrides(tmp_path, run_name="tf")))
    with pytest.raises(ValueError, match="TF-IDF run has no network to export"):
        export.export_onnx(run)
    with pytest.raises(ValueError, match="use --backend torch"):
        load_predictor(run, backend="onnx-int8")
