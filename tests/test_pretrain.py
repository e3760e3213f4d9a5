"""`stance pretrain`: config loading, reading unlabeled text, masked-LM training that resumes after a kill, and
a backbone that `stance train` starts from."""

import json
import lzma
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import transformers

from train.config import ConfigError, load_config, load_pretrain_config
from train.fit import RunFolderError, fit
from train.pretrain import MaskedOnlyTrainer, cap_lines, input_files, iter_blocks, iter_documents, pretrain, unsegment

from .conftest import FIXTURES, REPO, mini_overrides

TINY = REPO / "configs" / "pretrain-tiny.yaml"
TEXT = FIXTURES / "pretrain" / "news_segmented.txt"
PRETRAIN_CONFIGS = sorted((REPO / "configs").glob("pretrain-*.yaml"))


@pytest.mark.parametrize("path", PRETRAIN_CONFIGS, ids=[p.name for p in PRETRAIN_CONFIGS])
def test_every_shipped_pretrain_config_loads(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # from another folder, relative inputs are read from the project root
    cfg = load_pretrain_config(path)
    assert cfg.run_name == path.stem
    assert cfg.data.inputs and all(item.startswith(f"{REPO}/") for item in cfg.data.inputs)


def test_pretrain_config_is_strict(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: x\ndata:\n  inputs: [a.txt]\ntraining:\n  mlm_probabilty: 0.2\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown key 'training.mlm_probabilty' \(did you mean"):
        load_pretrain_config(bad)
    with pytest.raises(ConfigError, match="training.mlm_probability' must be in"):
        load_pretrain_config(TINY, ["training.mlm_probability=1.5"])
    with pytest.raises(ConfigError, match="model.max_length' must be in"):
        load_pretrain_config(TINY, ["model.max_length=512"])
    with pytest.raises(ConfigError, match="data.inputs' must list"):
        load_pretrain_config(TINY, ["data.inputs="])
    with pytest.raises(ConfigError, match="unknown key 'data.inputs'"):  # a pretrain config is not a train config
        load_config(TINY)


def test_reading_txt_jsonl_xz_and_folders(tmp_path):
    (tmp_path / "a.txt").write_text("Câu một .\nCâu hai .\n\n\nCâu ba .\n", encoding="utf-8")
    with lzma.open(tmp_path / "b.jsonl.xz", "wt", encoding="utf-8") as handle:
        handle.write(json.dumps({"text": "Dòng một\n\nDòng hai"}) + "\n\n" + json.dumps({"text": "Bài khác"}) + "\n")
    (tmp_path / "notes.md").write_text("not read", encoding="utf-8")
    files = input_files([str(tmp_path)])
    assert [f.name for f in files] == ["a.txt", "b.jsonl.xz"]
    documents = list(iter_documents(files))
    assert documents == [["Câu một .", "Câu hai ."], ["Câu ba ."], ["Dòng một", "Dòng hai"], ["Bài khác"]]
    assert list(cap_lines(documents, 3)) == [["Câu một .", "Câu hai ."], ["Câu ba ."]]
    assert list(cap_lines(documents, 0)) == documents

    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: no text field 'text'"):
        list(iter_documents([tmp_path / "bad.jsonl"]))
    with pytest.raises(FileNotFoundError, match="data.inputs: .*missing.txt not found"):
        input_files([str(tmp_path / "missing.txt")])
    with pytest.raises(ValueError, match=r"notes\.md is not \.txt"):
        input_files([str(tmp_path / "notes.md")])


def test_unsegment_gives_ordinary_text_for_raw_text_models():
    assert unsegment("Bộ_trưởng Quốc_phòng Nga , ông Shoigu ( ảnh ) nói .") == "Bộ trưởng Quốc phòng Nga, ông Shoigu (ảnh) nói."


def _train_overrides(tmp_path, run_name, steps):
    inputs = tmp_path / "corpus"
    inputs.mkdir(exist_ok=True)
    text = TEXT.read_text(encoding="utf-8")
    (inputs / "news.txt").write_text(text, encoding="utf-8")
    with lzma.open(inputs / "more.txt.xz", "wt", encoding="utf-8") as handle:  # the same news, compressed
        handle.write(text)
    return [f"data.inputs={inputs}", f"output_dir={tmp_path / 'runs'}", f"run_name={run_name}",
            f"training.max_steps={steps}", "training.save_steps=3"]  # fmt: skip


def test_pretrain_resumes_after_kill_and_stance_train_starts_from_the_backbone(tmp_path):
    steps = 60
    reference = pretrain(load_pretrain_config(TINY, _train_overrides(tmp_path, "reference", steps)))
    ref_info = json.loads((reference / "run.json").read_text())
    assert ref_info["status"] == "complete" and ref_info["steps"] == steps
    assert ref_info["kind"] == "pretrain" and ref_info["model_source"] == "scratch"
    assert [entry["path"].rsplit("/", 1)[-1] for entry in ref_info["data"]] == ["more.txt.xz", "news.txt"]
    assert all(len(entry["sha256"]) == 64 for entry in ref_info["data"])
    assert ref_info["last_loss"] < ref_info["first_loss"], "MLM loss should fall on text seen many times"
    # 24 blocks of 8 = 3 steps an epoch and a checkpoint every 3 steps: a resume starts at an epoch's start, where
    # it draws the same masks as the uninterrupted run (mid-epoch, the masking RNG makes losses differ slightly).
    assert ref_info["blocks"] == 24
    assert not (reference / "checkpoints").exists()

    overrides = _train_overrides(tmp_path, "killed", steps)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "train.cli", "pretrain", str(TINY), *overrides]
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoints = tmp_path / "runs" / "killed" / "checkpoints"
    deadline = time.time() + 300
    while time.time() < deadline and not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
        assert process.poll() is None, "pretraining ended before its first checkpoint"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = tmp_path / "runs" / "killed"
    assert json.loads((killed / "run.json").read_text())["status"] == "running", "the kill came too late"

    with pytest.raises(RunFolderError, match="--resume"):
        pretrain(load_pretrain_config(TINY, overrides))
    with pytest.raises(RunFolderError, match="training.learning_rate"):
        pretrain(load_pretrain_config(TINY, [*overrides, "training.learning_rate=0.1"]), resume=True)
    resumed = pretrain(load_pretrain_config(TINY, overrides), resume=True)
    info = json.loads((resumed / "run.json").read_text())
    assert info["status"] == "complete" and info["steps"] == steps
    losses = [row["loss"] for row in map(json.loads, (resumed / "train_log.jsonl").read_text().splitlines()) if "loss" in row]
    ref_losses = [row["loss"] for row in map(json.loads, (reference / "train_log.jsonl").read_text().splitlines())
                  if "loss" in row]  # fmt: skip
    assert losses[-1] == pytest.approx(ref_losses[-1], rel=1e-5), "a resumed run continues where the killed one stopped"
    assert pretrain(load_pretrain_config(TINY, overrides), resume=True) == resumed  # complete: nothing to do

    backbone = resumed / "backbone"
    tokenizer = transformers.AutoTokenizer.from_pretrained(backbone)
    blocks = list(iter_blocks([["Bộ_trưởng Ngoại_giao Pháp"] * 30, ["Hội_đồng Bảo_an"]], tokenizer, 24))
    assert all(len(block["input_ids"]) <= 24 for block in blocks)
    assert all(block["input_ids"][0] == tokenizer.cls_token_id and block["input_ids"][-1] == tokenizer.sep_token_id
               for block in blocks)  # fmt: skip
    assert blocks[-1]["input_ids"][1:-1] == tokenizer("Hội_đồng Bảo_an", add_special_tokens=False)["input_ids"]

    # The trainer's loss (head on the masked positions only) is the model's own MLM loss.
    model = transformers.AutoModelForMaskedLM.from_pretrained(backbone).eval()
    torch.manual_seed(0)
    batch = transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.3)(blocks)
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "unused"), report_to="none", use_cpu=True)
    with torch.no_grad():
        ours = MaskedOnlyTrainer(model=model, args=args).compute_loss(model, dict(batch))
        assert ours.item() == pytest.approx(model(**batch).loss.item(), rel=1e-5)

    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(backbone, num_labels=4)
    assert classifier.config.num_labels == 4
    # A local RoBERTa folder (as a PhoBERT download is) keeps its MLM head: pretraining can go on from it.
    again = pretrain(load_pretrain_config(TINY, [*_train_overrides(tmp_path, "again", 2), f"model.name_or_path={backbone}"]))
    head = json.loads((again / "run.json").read_text())["mlm_head"]
    assert head["initialised"] == [] and head["tied_to_input_embeddings"] is True
    cfg = load_config(REPO / "configs" / "tiny.yaml",
                      [*mini_overrides(tmp_path / "runs", run_name="from-backbone", epochs=1),
                       f"model.name_or_path={backbone}"])  # fmt: skip
    run = fit(cfg)
    assert json.loads((run / "run.json").read_text())["model_source"] == str(backbone)
    assert (run / "metrics.json").is_file()


@pytest.mark.slow
def test_bundled_encoder_gets_a_tied_mlm_head_and_its_backbone_classifies(tmp_path, monkeypatch):
    backbones = REPO / "models" / "backbones"
    if not any(backbones.glob("e5-small-vi-*")):
        pytest.skip("bundled:e5-small-vi is not converted in models/backbones (stance train configs/e5-small-vi.yaml does it)")
    from train import modeling

    original = modeling.resolve_source
    monkeypatch.setattr(modeling, "resolve_source", lambda name: original(name, backbone_cache=backbones))
    overrides = [*_train_overrides(tmp_path, "e5", 2), "training.batch_size=4", "training.threads=1",
                 "model.max_length=32"]  # fmt: skip
    run = pretrain(load_pretrain_config(REPO / "configs" / "pretrain-e5-small-vi.yaml", overrides))
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["steps"] == 2
    assert info["mlm_head"]["tied_to_input_embeddings"] is True
    assert "cls.predictions.transform.dense.weight" in info["mlm_head"]["initialised"]
    assert info["text"] == "segmented text: underscores read as spaces"
    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(run / "backbone", num_labels=4)
    assert classifier.config.model_type == "bert"
