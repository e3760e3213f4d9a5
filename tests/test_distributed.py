"""Scaling out: per-process batches, devices, the merge of prediction parts, and real 2-process torchrun runs
(gloo on CPU) of training and batch prediction compared with one process."""

import json
import os
import signal
import subprocess
import sys
from itertools import islice

import pytest
import torch

from train import distributed
from train.batch import Outputs, iter_documents, predict_documents
from train.mentions import load_gazetteer
from train.predict import load_predictor
from train.shards import _with_global_ids, merge_parts, part_folder, predict_sharded

from .conftest import REPO, SHARED, kill_after_first_checkpoint, mini_overrides
from .test_batch_predict import MINI_GAZ, KeywordPredictor, make_inputs, rows

TINY = REPO / "configs" / "tiny.yaml"
MERGED = (*Outputs.FILES, "summary.md")
# Best dev macro-F1 of a 2-process run against one process. The global batch and the sampler's seed are the
# same, but each process normalises its class-weighted loss over its own half batch, length grouping works
# on per-process batches, and gloo adds gradients in another order, so the runs drift apart after a few
# epochs. Measured on these settings: 0.900 (2 processes) against 0.931 (1); with group_by_length off, 0.900
# both. On the 49 fixture dev examples one changed prediction moves macro-F1 by about 0.03.
F1_TOLERANCE = 0.06


def env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(REPO)}  # fmt: skip


def torchrun_command(*args: str, procs: int = 2) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
            "-m", "train.cli", *args]  # fmt: skip


def torchrun(*args: str, procs: int = 2) -> subprocess.CompletedProcess:
    return subprocess.run(torchrun_command(*args, procs=procs), cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=600)  # fmt: skip


def stance(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train.cli", *args], cwd=REPO, env=env(), capture_output=True,
                          text=True, timeout=600)  # fmt: skip


PROBE = """
import torch.distributed as dist
dist.init_process_group("gloo")
dist.barrier()
dist.destroy_process_group()
"""


@pytest.fixture(scope="session")
def torchrun_ok(tmp_path_factory):
    """Skip where torchrun cannot start two gloo processes (no local sockets, a locked-down sandbox)."""
    probe = tmp_path_factory.mktemp("probe") / "probe.py"
    probe.write_text(PROBE, encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(probe)], env=env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"torchrun cannot start 2 gloo processes here: {done.stderr.strip()[-300:]}")


# --- no torchrun needed ---------------------------------------------------------------------------------


def test_per_process_batch_keeps_the_global_batch_or_says_why_not(monkeypatch):
    assert distributed.per_process_batch(16, 2) == 8 and distributed.per_process_batch(16, 1) == 16
    with pytest.raises(ValueError, match="training.batch_size=16 does not divide over 3 processes"):
        distributed.per_process_batch(16, 3)
    monkeypatch.setenv("WORLD_SIZE", "2")
    options = distributed.trainer_options(16, 64, "cpu")
    assert options["per_device_train_batch_size"] == 8 and options["ddp_backend"] == "gloo" and options["use_cpu"]
    assert not (options["fp16"] or options["bf16"])  # no half precision on CPU
    assert distributed.describe("cpu") == {"world_size": 2, "backend": "gloo", "device": "cpu", "precision": "fp32"}
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(ValueError, match="multiple of 3"):
        distributed.trainer_options(16, 64, "cpu")


def test_device_precision_and_batch_size_choices():
    assert distributed.resolve_device("cpu") == "cpu"
    assert distributed.resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="sees no CUDA GPU"):
            distributed.resolve_device("cuda")
    with pytest.raises(ValueError, match="--device"):
        distributed.resolve_device("tpu")
    assert distributed.autocast_dtype("cpu") is None and distributed.autocast_dtype("cuda", "fp32") is None
    assert distributed.autocast_dtype("cuda", "fp16") == torch.float16
    assert distributed.autocast_dtype("cuda", "bf16") == torch.bfloat16
    with pytest.raises(ValueError, match="needs --device cuda"):
        distributed.autocast_dtype("cpu", "bf16")
    assert distributed.default_batch_size("cuda") > distributed.default_batch_size("cpu") == 32


def test_evaluate_refuses_to_run_in_several_processes(monkeypatch, capsys):
    from train.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["evaluate", "models/anything"]) == 2
    assert "evaluate runs in one process" in capsys.readouterr().err


def test_predictor_places_the_model_on_the_asked_device(tiny_run):
    pairs = [("Pháp", "Pháp viện trợ cho Ukraine."), ("Nga", "Nga phản đối trừng phạt của phương Tây.")]
    default = load_predictor(tiny_run)
    placed = load_predictor(tiny_run, device="auto", precision="fp32")
    assert next(placed.model.parameters()).device.type == placed.device.type
    assert placed.autocast is None
    if placed.device.type == "cpu":
        assert placed.predict(pairs) == default.predict(pairs)
    with pytest.raises(ValueError, match="needs --device cuda"):
        load_predictor(tiny_run, device="cpu", precision="fp16")


def test_parts_predicted_apart_merge_into_the_single_process_files(tmp_path):
    """The sharding and the merge, in one process: rank r of 3 takes documents r, r+3, ..."""
    inputs = tmp_path / "in"
    make_inputs(inputs)
    again = tmp_path / "again"  # a.txt twice (renamed the second time) and b.html twice (a true duplicate)
    again.mkdir()
    (again / "a.txt").write_text("Pháp viện trợ Ukraine.", encoding="utf-8")
    (again / "b.html").write_bytes((inputs / "b.html").read_bytes())
    sources = [str(inputs), str(again)]
    gaz = load_gazetteer(MINI_GAZ)
    single = tmp_path / "single"
    predict_documents(KeywordPredictor(), iter_documents(sources), gaz, single, progress=False)
    out, world = tmp_path / "sharded", 3
    parts = [part_folder(out, rank, world) for rank in range(world)]
    for rank, part in enumerate(parts):
        share = islice(_with_global_ids(iter_documents(sources)), rank, None, world)
        predict_documents(KeywordPredictor(), share, gaz, part, progress=False)
    assert len(rows(parts[0] / "documents.jsonl")) < len(rows(single / "documents.jsonl"))
    merge_parts(parts, out, KeywordPredictor.labels)
    for name in MERGED:
        assert (out / name).read_bytes() == (single / name).read_bytes(), name

    # One process meeting a 3-process folder: no silent overwrite, no resume with another split.
    with pytest.raises(FileExistsError, match="3-process run"):
        predict_sharded(KeywordPredictor(), iter_documents([str(inputs)]), gaz, out, progress=False)
    with pytest.raises(ValueError, match="resume it with 3 processes"):
        predict_sharded(KeywordPredictor(), iter_documents([str(inputs)]), gaz, out, resume=True, progress=False)


# --- real torchrun, 2 CPU processes ---------------------------------------------------------------------


def dev_f1(run) -> float:
    return json.loads((run / "metrics.json").read_text(encoding="utf-8"))["best_dev"]["macro_f1"]


def test_two_process_training_matches_one_process(torchrun_ok, tiny_run, tmp_path):
    from transformers import pipeline

    done = torchrun("train", str(TINY), *mini_overrides(tmp_path, "ddp"))  # tiny_run's settings, 2 processes
    assert done.returncode == 0, done.stderr[-3000:]
    run = tmp_path / "ddp"
    assert done.stdout.splitlines().count(str(run)) == 1  # rank 0 alone prints the folder
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert (info["status"], info["world_size"], info["backend"], info["device"]) == ("complete", 2, "gloo", "cpu")
    assert abs(dev_f1(run) - dev_f1(tiny_run)) <= F1_TOLERANCE, (dev_f1(run), dev_f1(tiny_run))
    epochs = [json.loads(line) for line in (run / "dev_metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [row["epoch"] for row in epochs] == [float(e) for e in range(1, 21)]  # written once, by rank 0
    assert not (run / "checkpoints").exists()
    classify = pipeline("text-classification", model=str(run / "model"))
    out = classify({"text": "Pháp", "text_pair": "Pháp công_bố gói viện_trợ quân_sự mới cho Ukraine ."})
    assert (out[0] if isinstance(out, list) else out)["label"] in info["labels"]

    again = torchrun("train", str(TINY), *mini_overrides(tmp_path, "ddp"))  # every rank stops with rank 0's refusal
    assert again.returncode != 0 and "already exists and is not empty" in again.stderr


def test_a_killed_two_process_training_resumes_to_the_uninterrupted_result(torchrun_ok, tmp_path):
    overrides = [*mini_overrides(tmp_path, epochs=4), "training.batch_size=4"]
    reference = torchrun("train", str(TINY), *overrides, "run_name=reference")
    assert reference.returncode == 0, reference.stderr[-3000:]

    command = torchrun_command("train", str(TINY), *overrides, "run_name=killed")
    process = subprocess.Popen(command, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)  # fmt: skip
    # The launcher and both ranks form one process group: killed together, as a lost node would take them.
    checkpoints = tmp_path / "killed" / "checkpoints"
    kill_after_first_checkpoint(process, checkpoints, lambda: os.killpg(process.pid, signal.SIGKILL))
    assert json.loads((tmp_path / "killed" / "run.json").read_text())["status"] == "running", "killed too late"

    resumed = torchrun("train", str(TINY), *overrides, "run_name=killed", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ref = json.loads((tmp_path / "reference" / "metrics.json").read_text())
    got = json.loads((tmp_path / "killed" / "metrics.json").read_text())
    assert [row["eval_loss"] for row in got["epochs"]] == [row["eval_loss"] for row in ref["epochs"]]
    assert got["best_dev"]["macro_f1"] == ref["best_dev"]["macro_f1"] and got["best_epoch"] == ref["best_epoch"]


def test_two_process_predict_equals_one_process_and_resumes_a_killed_rank(torchrun_ok, tiny_run, tmp_path):
    inputs = tmp_path / "in"
    make_inputs(inputs)
    sources = [str(inputs)] + [str(p) for p in (SHARED / "seeds", REPO / "data" / "articles") if p.is_dir()]
    common = ["predict", str(tiny_run), "--input", *sources, "--gazetteer", str(MINI_GAZ)]
    one = stance(*common, "--output", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr[-3000:]
    out = tmp_path / "two"
    two = torchrun(*common, "--output", str(out))
    assert two.returncode == 0, two.stderr[-3000:]
    assert len(two.stdout.strip().splitlines()) == 1  # rank 0 alone prints the totals
    counts = ("ok", "skipped", "pairs", "sentences")
    stats_one, stats_two = json.loads(one.stdout), json.loads(two.stdout)
    assert [stats_two[key] for key in counts] == [stats_one[key] for key in counts]
    for name in MERGED:
        assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name

    # Rank 1 is killed with its last two documents unfinished: their sentences are written, their ledger lines
    # are not (one is torn), and the merge never ran.
    part0, part1 = part_folder(out, 0, 2), part_folder(out, 1, 2)
    ledger = (part1 / "documents.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    (part1 / "documents.jsonl").write_text("".join(ledger[:-2]) + ledger[-2][:15], encoding="utf-8")
    for name in MERGED:
        (out / name).unlink()
    rank0_before = {name: (part0 / name).read_bytes() for name in Outputs.FILES}
    resumed = torchrun(*common, "--output", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    stats = json.loads(resumed.stdout)
    assert stats["ok"] + stats["skipped"] == 2  # only what rank 1 had not finished
    assert stats["already_done"] == stats_one["ok"] + stats_one["skipped"] - 2
    assert {name: (part0 / name).read_bytes() for name in Outputs.FILES} == rank0_before
    for name in MERGED:
        assert (out / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name

    wrong = stance(*common, "--output", str(out), "--resume")  # documents were dealt out over 2 processes
    assert wrong.returncode == 2 and "2 processes" in wrong.stderr
    refused = torchrun(*common, "--output", str(out))
    assert refused.returncode != 0 and "--resume" in refused.stderr
