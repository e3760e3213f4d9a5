"""The real `stance` command: train the tiny config then predict on a pair, and every way a start, a stop or a
resume could lose a user's files or runs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

from train import __version__
from train.data import LABELS

from .conftest import MINI, REPO, default_sigint, mini_overrides


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


def test_version_and_config_errors_come_before_torch_loads(tmp_path):
    done = run("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"stance {__version__}"
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  learning_rate: .nan\n", encoding="utf-8")
    probe = f"import sys; from train.cli import main; rc = main(['train', {str(bad)!r}]); print(rc, 'torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert done.stdout.split() == ["2", "False"], done.stderr[-2000:]
    assert "'training.learning_rate' must be > 0 and finite" in done.stderr


def test_data_split_without_inputs_and_agreement_without_second_change_nothing(tmp_path):
    for split in ("train", "dev", "test"):
        shutil.copy(MINI / f"{split}.jsonl", tmp_path / f"{split}.jsonl")
    before = {path.name: path.read_bytes() for path in tmp_path.iterdir()}
    done = run("data", "split", "--data-dir", str(tmp_path))
    assert done.returncode == 2 and "give the example JSONL file(s)" in done.stderr and "Traceback" not in done.stderr
    done = run("data", "agreement", "--data-dir", str(tmp_path))
    assert done.returncode == 2 and "give --second FILE" in done.stderr and "Traceback" not in done.stderr
    assert {path.name: path.read_bytes() for path in tmp_path.iterdir()} == before


def test_force_deletes_only_run_folders_and_only_after_the_checks(tmp_path):
    runs = tmp_path / "runs"
    mine = runs / "mine"
    mine.mkdir(parents=True)
    (mine / "notes.txt").write_text("precious", encoding="utf-8")
    (mine / "thesis.docx").write_bytes(b"PK\x03\x04")
    done = run("train", "configs/tiny.yaml", *mini_overrides(runs, run_name="mine"), "--force")
    assert done.returncode == 2 and "not a run folder" in done.stderr and "Traceback" not in done.stderr
    assert sorted(path.name for path in mine.iterdir()) == ["notes.txt", "thesis.docx"]

    old = runs / "old"  # an earlier run of ours: --force may replace it, but not before the new data checks out
    (old / "model").mkdir(parents=True)
    (old / "run.json").write_text(json.dumps({"status": "complete", "labels": list(LABELS)}), encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "Pháp.", "country": "Pháp"}\n', encoding="utf-8")
    done = run("train", "configs/tiny.yaml", *mini_overrides(runs, run_name="old"), f"data.train={bad}", "--force")
    assert done.returncode == 2 and f"{bad}:1: missing or empty field(s): label" in done.stderr
    assert (old / "run.json").is_file() and (old / "model").is_dir()

    done = run("train", "configs/tiny.yaml", *mini_overrides(runs, run_name="fresh"), f"data.dev={tmp_path / 'no.jsonl'}")
    assert done.returncode == 2 and f"data.dev: {tmp_path / 'no.jsonl'} not found" in done.stderr
    assert "current folder" in done.stderr and not (runs / "fresh").exists()
    # a failure after the folder was made (here the model) leaves no half-made run behind
    done = run("train", "configs/tiny.yaml", *mini_overrides(runs, run_name="fresh"), "model.name_or_path=nobody/no-model")
    assert done.returncode == 2 and "nobody/no-model" in done.stderr and "Traceback" not in done.stderr
    assert not (runs / "fresh").exists()


def test_ctrl_c_keeps_the_run_and_resume_refuses_changed_data(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for split in ("train", "dev"):
        shutil.copy(MINI / f"{split}.jsonl", data / f"{split}.jsonl")
    overrides = [*mini_overrides(tmp_path, run_name="stopped", epochs=5), "training.batch_size=4",
                 f"data.train={data / 'train.jsonl'}", f"data.dev={data / 'dev.jsonl'}"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "train.cli", "train", "configs/tiny.yaml", *overrides], cwd=REPO,
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=default_sigint)  # fmt: skip
    checkpoints = tmp_path / "stopped" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
        assert process.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr[-3000:]
    assert "interrupted; run again with --resume to continue" in stderr and "Traceback" not in stderr
    assert json.loads((tmp_path / "stopped" / "run.json").read_text(encoding="utf-8"))["status"] == "running"
    # loss lines went to the run's train.log, not the terminal
    assert "'loss'" not in stdout + stderr and '"loss"' in (tmp_path / "stopped" / "train.log").read_text("utf-8")

    recorded = (tmp_path / "stopped" / "run.json").read_bytes()
    with (data / "train.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"id": "new", "text": "Nga tấn công.", "country": "Nga", "label": "pro_russia"}) + "\n")
    done = run("train", "configs/tiny.yaml", *overrides, "--resume")
    assert done.returncode == 2 and f"data.train {data / 'train.jsonl'} changed since the run started" in done.stderr
    assert (tmp_path / "stopped" / "run.json").read_bytes() == recorded
