"""One real end-to-end run of the `stance` command: train the tiny config, then predict on a pair."""

import json
import os
import subprocess
import sys

from .conftest import REPO, mini_overrides


def run(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "train.cli", *args], cwd=REPO, env=env, capture_output=True, text=True)


def test_train_then_predict_a_pair(tmp_path):
    done = run("train", "configs/tiny.yaml", *mini_overrides(tmp_path, run_name="e2e"), "--threads", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "e2e"
    assert done.stdout.strip().endswith(str(run_dir))
    assert (run_dir / "model" / "model.safetensors").is_file()

    again = run("train", "configs/tiny.yaml", *mini_overrides(tmp_path, run_name="e2e"))
    assert again.returncode == 2 and "already exists" in again.stderr

    text = "Đức công bố gói viện trợ quân sự mới cho Ukraine trị giá 500 triệu USD."
    predicted = run("predict", str(run_dir), "--country", "Đức", "--text", text)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    result = json.loads(predicted.stdout)
    assert set(result["probs"]) == {"pro_ukraine", "pro_russia", "neutral", "none"}
    assert abs(sum(result["probs"].values()) - 1) < 1e-5
    assert result["label"] == "pro_ukraine"


def test_bad_config_key_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainig:\n  epochs: 1\n", encoding="utf-8")
    done = run("train", str(bad))
    assert done.returncode == 2
    assert f"{bad}: unknown key 'trainig' (did you mean 'training'?)" in done.stderr
    assert "Traceback" not in done.stderr
