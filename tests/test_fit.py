import json
import os
import subprocess
import sys

import pytest
from transformers import AutoModelForSequenceClassification, pipeline

from train.config import dump_config, load_config
from train.fit import RunFolderError, fit

from .conftest import FIXTURES, REPO, kill_after_first_checkpoint, mini_overrides

TINY = REPO / "configs" / "tiny.yaml"


def test_run_folder_describes_itself(tiny_run):
    for name in ("config.yaml", "run.json", "metrics.json", "dev_metrics.jsonl", "train_log.jsonl", "train.log"):
        assert (tiny_run / name).is_file(), name
    info = json.loads((tiny_run / "run.json").read_text(encoding="utf-8"))
    assert info["status"] == "complete"
    assert info["labels"] == ["pro_ukraine", "pro_russia", "neutral", "none"]
    assert info["segmenter"]["name"] == "pyvi" and info["segmenter"]["version"]
    assert info["seed"] == 42 and info["command"]
    assert {"torch", "transformers", "datasets"} <= set(info["versions"])
    assert all(len(entry["sha256"]) == 64 for entry in info["data"].values())
    assert load_config(tiny_run / "config.yaml").run_name == "mini"
    epochs = [json.loads(line) for line in (tiny_run / "dev_metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(epochs) == 20 and all("eval_macro_f1" in row for row in epochs)
    metrics = json.loads((tiny_run / "metrics.json").read_text(encoding="utf-8"))
    # the kept model is the epoch with the best dev macro-F1 (first one on ties, as Trainer picks)
    best = max(epochs, key=lambda row: row["eval_macro_f1"])
    assert metrics["best_dev"]["macro_f1"] == best["eval_macro_f1"] and metrics["best_epoch"] == best["epoch"]
    assert metrics["best_dev"]["macro_f1"] > 0.5, "the tiny model should learn the fixture's clear signal"
    assert not (tiny_run / "checkpoints").exists()


def test_saved_model_loads_with_auto_classes_and_pipeline(tiny_run):
    model_dir = tiny_run / "model"
    assert (model_dir / "model.safetensors").is_file()
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    assert model.config.id2label[0] == "pro_ukraine"
    classify = pipeline("text-classification", model=str(model_dir))
    out = classify({"text": "Pháp", "text_pair": "Pháp công_bố gói viện_trợ quân_sự mới cho Ukraine ."})
    out = out[0] if isinstance(out, list) else out
    assert out["label"] in {"pro_ukraine", "pro_russia", "neutral", "none"}


def test_non_empty_run_folder_is_refused_without_force_and_force_replaces_only_runs(tmp_path):
    cfg = load_config(TINY, mini_overrides(tmp_path, epochs=1))
    cfg.run_dir.mkdir(parents=True)
    (cfg.run_dir / "notes.txt").write_text("precious", encoding="utf-8")
    with pytest.raises(RunFolderError, match="--force"):
        fit(cfg)
    with pytest.raises(RunFolderError, match="not a run folder"):
        fit(cfg, force=True)
    assert (cfg.run_dir / "notes.txt").read_text(encoding="utf-8") == "precious"
    (cfg.run_dir / "notes.txt").unlink()
    (cfg.run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")  # an earlier run of ours
    (cfg.run_dir / "train.log").write_text("old run", encoding="utf-8")
    fit(cfg, force=True)
    assert "old run" not in (cfg.run_dir / "train.log").read_text(encoding="utf-8")
    assert (cfg.run_dir / "model").is_dir()


def test_same_seed_same_metrics_and_balanced_weights_train(tmp_path):
    overrides = mini_overrides(tmp_path, epochs=3) + ["training.class_weights=balanced"]
    first = fit(load_config(TINY, overrides + ["run_name=a"]))
    second = fit(load_config(TINY, overrides + ["run_name=b"]))
    third = fit(load_config(TINY, overrides + ["run_name=c", "training.seed=7"]))

    def losses(run):
        return [row["eval_loss"] for row in json.loads((run / "metrics.json").read_text())["epochs"]]

    assert losses(first) == losses(second)
    assert losses(first) != losses(third)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path):
    overrides = mini_overrides(tmp_path, epochs=5) + ["training.batch_size=4"]
    reference = fit(load_config(TINY, overrides + ["run_name=reference"]))

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "train.cli", "train", str(TINY), *overrides, "run_name=killed"]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_first_checkpoint(process, tmp_path / "killed" / "checkpoints", lambda: process.kill())
    info = json.loads((tmp_path / "killed" / "run.json").read_text())
    assert info["status"] == "running", "the kill came too late to interrupt training"

    with pytest.raises(RunFolderError, match="--resume"):
        fit(load_config(TINY, overrides + ["run_name=killed"]))
    resumed = fit(load_config(TINY, overrides + ["run_name=killed"]), resume=True)
    ref = json.loads((reference / "metrics.json").read_text())
    got = json.loads((resumed / "metrics.json").read_text())
    assert [row["eval_loss"] for row in got["epochs"]] == [row["eval_loss"] for row in ref["epochs"]]
    assert got["best_dev"]["macro_f1"] == ref["best_dev"]["macro_f1"]
    # resuming a finished run does nothing, and a changed config is refused
    assert fit(load_config(TINY, overrides + ["run_name=killed"]), resume=True) == resumed
    with pytest.raises(RunFolderError, match="training.learning_rate"):
        fit(load_config(TINY, overrides + ["run_name=killed", "training.learning_rate=0.1"]), resume=True)


def test_marked_target_run_keeps_its_gazetteer_and_marks_at_prediction(tmp_path):
    from train.predict import load_predictor

    overrides = [*mini_overrides(tmp_path, "marked", epochs=2), "model.mark_target=true",
                 f"model.gazetteer={FIXTURES / 'countries_mini.yaml'}"]  # fmt: skip
    run = fit(load_config(REPO / "configs" / "tiny.yaml", overrides))
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert info["mark_target"] is True and (run / info["gazetteer"]).is_file()
    predictor = load_predictor(run)
    # the run reads its own copy of the gazetteer: Berlin is a mention of Đức
    country, text = predictor.model_input("Đức", "Berlin gửi thêm xe tăng cho Kiev.")
    assert "« Berlin »" in text and "Kiev" in text and "« Kiev" not in text
    assert predictor.predict([("Đức", "Berlin gửi thêm xe tăng cho Kiev.")])[0]["label"] in info["labels"]
