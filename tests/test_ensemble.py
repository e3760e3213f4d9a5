"""model.type: ensemble: weights fit on dev over member runs of any kind; train/evaluate/predict/compare work on
it, and a moved or changed member is an error naming it."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from train.config import ConfigError, load_config
from train.ensemble import choose_weights, weight_grid
from train.fit import fit
from train.predict import load_predictor
from train.runinfo import model_file_hashes

from .conftest import MINI, REPO, mini_overrides

ENSEMBLE = REPO / "configs" / "ensemble.yaml"


def run(*args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "train.cli", *args], cwd=REPO, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def members(tmp_path_factory, tiny_run):
    """A tiny transformer run and a TF-IDF run on the fixture data, in a folder of their own."""
    root = tmp_path_factory.mktemp("members")
    shutil.copytree(tiny_run, root / "tiny")
    fit(load_config(REPO / "configs" / "tfidf.yaml", mini_overrides(root, run_name="tfidf")))
    return root


def train_ensemble(members_root, out, run_name="ens"):
    overrides = [o for o in mini_overrides(out, run_name=run_name) if not o.startswith("training.")]
    done = run("train", str(ENSEMBLE), *overrides,
               f"model.ensemble.members={members_root / 'tiny'},{members_root / 'tfidf'}")
    assert done.returncode == 0, done.stderr[-3000:]
    return out / run_name


def test_config_file_and_bad_values():
    cfg = load_config(ENSEMBLE)
    assert cfg.model.type == "ensemble" and len(cfg.model.ensemble.members) == 2
    with pytest.raises(ConfigError, match="model.ensemble.members' must list at least two"):
        load_config(ENSEMBLE, ["model.ensemble.members=models/only-one"])
    with pytest.raises(ConfigError, match="grid_step"):
        load_config(ENSEMBLE, ["model.ensemble.grid_step=0.3"])
    with pytest.raises(ConfigError, match="objective"):
        load_config(ENSEMBLE, ["model.ensemble.objective=accuracy"])


def test_weight_grid_covers_the_simplex():
    grid = weight_grid(3, 0.5)
    assert sorted(grid) == sorted([(0, 0, 1), (0, 0.5, 0.5), (0, 1, 0), (0.5, 0, 0.5), (0.5, 0.5, 0), (1, 0, 0)])
    assert len(weight_grid(2, 0.1)) == 11 and all(abs(sum(w) - 1) < 1e-9 for w in weight_grid(4, 0.25))


def test_choose_weights_prefers_the_informative_member():
    rng = np.random.default_rng(0)
    gold = rng.integers(0, 4, 200)
    good = np.full((200, 4), 0.1)
    good[np.arange(200), gold] = 0.7
    noise = rng.dirichlet(np.ones(4), 200)
    for objective in ("macro_f1", "log_loss"):
        weights, f1, loss = choose_weights([noise, good], gold, 0.1, objective)
        assert weights[1] > weights[0] and f1 == 1.0
        assert loss < -np.log(0.7) + 1e-9  # no worse than the good member alone


def test_train_evaluate_predict_compare(members, tmp_path):
    run_dir = train_ensemble(members, tmp_path)
    info = json.loads((run_dir / "run.json").read_text())
    spec = json.loads((run_dir / "model" / "ensemble.json").read_text())
    assert info["model_type"] == "ensemble" and info["status"] == "complete"
    assert spec["fit_on"]["path"] == str(MINI / "dev.jsonl")  # the weights are fit on dev, never on test
    assert [m["path"] for m in spec["members"]] == [str(members / "tiny"), str(members / "tfidf")]
    assert [m["model_type"] for m in spec["members"]] == ["transformer", "tfidf"]
    for member in spec["members"]:
        from pathlib import Path

        assert member["sha256"] == model_file_hashes(Path(member["path"])) and member["sha256"]
    weights = [m["weight"] for m in spec["members"]]
    assert abs(sum(weights) - 1) < 1e-9
    best = json.loads((run_dir / "metrics.json").read_text())["best_dev"]
    # (1, 0) and (0, 1) are on the grid, so the chosen weights score at least as well as either member on dev
    assert best["macro_f1"] >= max(m["dev"]["macro_f1"] for m in spec["members"]) - 1e-12

    done = run("evaluate", str(run_dir), "--split", "test")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (run_dir / "eval" / "test" / "predictions.jsonl").read_text().splitlines()]
    pairs = [(row["country"], row["text"]) for row in rows]
    parts = [load_predictor(m["path"]).predict(pairs) for m in spec["members"]]
    for i, row in enumerate(rows):
        for label, p in row["probs"].items():
            assert p == pytest.approx(sum(w * part[i]["probs"][label] for w, part in zip(weights, parts)), abs=1e-6)

    predictor = load_predictor(run_dir)
    assert predictor.gazetteer is not None  # the members' copy, as `stance predict` uses it for one run
    done = run("predict", str(run_dir), "--country", "Nga", "--text", "Nga tuyên bố tiếp tục chiến dịch.")
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout)
    assert out["label"] in out["probs"] and sum(out["probs"].values()) == pytest.approx(1.0)

    assert run("evaluate", str(members / "tfidf"), "--split", "test").returncode == 0
    done = run("compare", str(members / "tfidf"), str(run_dir), "--resamples", "1000")
    assert done.returncode == 0, done.stderr[-3000:]
    assert run_dir.name in done.stdout


def test_moved_or_changed_member_is_an_error_naming_it(members, tmp_path):
    copies = tmp_path / "members"
    shutil.copytree(members, copies)
    run_dir = train_ensemble(copies, tmp_path / "runs")

    (copies / "tfidf").rename(copies / "tfidf-moved")
    done = run("evaluate", str(run_dir), "--split", "test")
    assert done.returncode == 2
    assert f"ensemble member 2 ({copies / 'tfidf'}): not a run folder" in done.stderr and "moved" in done.stderr
    (copies / "tfidf-moved").rename(copies / "tfidf")

    (copies / "tfidf" / "model" / "README.md").write_text("# a model card, rewritten by evaluate\n")
    assert run("predict", str(run_dir), "--country", "Nga", "--text", "Nga tuyên bố.").returncode == 0

    weights = copies / "tfidf" / "model" / "weights.npz"
    with np.load(weights) as npz:
        arrays = {key: npz[key] for key in npz.files}
    arrays["intercept"] = arrays["intercept"] + 1.0
    np.savez(weights, **arrays)
    done = run("predict", str(run_dir), "--country", "Nga", "--text", "Nga tuyên bố tiếp tục chiến dịch.")
    assert done.returncode == 2
    assert f"ensemble member 2 ({copies / 'tfidf'}): model files differ" in done.stderr
    assert "weights.npz" in done.stderr
    assert not (run_dir / "eval").exists()  # nothing half-written by the failed commands
