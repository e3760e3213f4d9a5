"""Run comparison: hand-computed deltas and seed-group statistics, the paired bootstrap, the refusal to compare
runs scored on different data, and `stance train --seeds` → `evaluate` → `compare` end to end."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from sklearn.metrics import f1_score

from train.compare import CompareError, _macro_f1_batch, aggregate_seeds, compare, paired_bootstrap, write_comparison
from train.evaluation import evaluate_run

from .conftest import REPO, mini_overrides
from .test_evaluation import EIGHT, FixedPredictor, eight_rows, probs_for, write_eight


def make_run(root, name, data, rows, *, seed=42, lr="0.001"):
    """A run folder holding only what compare reads: config.yaml, metrics.json and one evaluation."""
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(f"run_name: {name}\ntraining:\n  seed: {seed}\n  learning_rate: {lr}\n",
                                     encoding="utf-8")  # fmt: skip
    evaluate_run(run, data=data, predictor=FixedPredictor(rows))
    macro = json.loads((run / "eval" / data.stem / "metrics.json").read_text())["macro_f1"]
    (run / "metrics.json").write_text(json.dumps({"best_dev": {"macro_f1": macro, "accuracy": 0.5}}), encoding="utf-8")
    return run


def better_rows():
    """EIGHT with every prediction right except ex-3 (pro_ukraine read as pro_russia)."""
    rows = eight_rows()
    for row, (gold, _, confidence, _) in zip(rows, EIGHT):
        predicted = "pro_russia" if row["id"] == "ex-3" else gold
        row.update(predicted=predicted, probs=probs_for(predicted, confidence))
    return rows


@pytest.fixture
def runs(tmp_path):
    data = tmp_path / "eight.jsonl"
    rows = write_eight(data)
    a = make_run(tmp_path, "a", data, rows)
    b = make_run(tmp_path, "b", data, better_rows(), lr="0.0005")
    return tmp_path, data, a, b


def test_deltas_config_diff_and_bootstrap_match_hand_numbers(runs):
    root, data, a, b = runs
    result = compare([a, b], eval_name="eight")
    first, second = result["entries"]
    # b by hand: pro_ukraine tp 2 fn 1 → F1 0.8; pro_russia tp 2 fp 1 → 0.8; neutral 1; none 1 → macro 0.9
    assert first["summary"]["macro_f1"]["mean"] == pytest.approx(2 / 3)
    assert second["summary"]["macro_f1"]["mean"] == pytest.approx(0.9)
    assert second["summary"]["accuracy"]["mean"] == pytest.approx(7 / 8)
    assert second["per_class"]["pro_russia"]["f1"]["mean"] == pytest.approx(0.8)
    assert second["per_country"]["Nga"]["macro_f1"]["mean"] == pytest.approx(1.0)
    assert result["config_diff"] == {"run_name": ["a", "b"], "training.learning_rate": [0.001, 0.0005]}
    test = result["bootstrap"][0]
    assert test["delta"] == pytest.approx(0.9 - 2 / 3)
    assert test["n_resamples"] >= 1000 and test["ci_low"] <= test["delta"] <= test["ci_high"]
    assert 0 < test["p_value"] <= 1
    assert compare([a, b], eval_name="eight")["bootstrap"] == result["bootstrap"], "fixed seed: same numbers"

    text = write_comparison(result, root / "cmp.md", root / "cmp.html")
    assert "| macro_f1 | 0.6667 | 0.9000 | +0.2333 |" in text
    assert "| accuracy | 0.6250 | 0.8750 | +0.2500 |" in text
    assert "| training.learning_rate | 0.001 | 0.0005 |" in text and "training.seed" not in text
    assert "| b − a | +0.2333 |" in text
    assert (root / "cmp.md").read_text(encoding="utf-8") == text
    assert (root / "cmp.html").read_text(encoding="utf-8").count("data:image/png;base64,") == 2


def test_seed_group_shows_mean_and_std(runs):
    root, data, a, b = runs
    s1 = make_run(root / "g", "m-s1", data, eight_rows(), seed=1)
    s2 = make_run(root / "g", "m-s2", data, better_rows(), seed=2)
    group = aggregate_seeds([s1, s2], [1, 2], root / "g" / "m-seeds.json")
    # dev macro-F1 2/3 and 0.9: mean 0.78333, sample std |0.9 − 2/3| / √2 = 0.16499
    assert group["dev"]["macro_f1"]["mean"] == pytest.approx(0.78333, abs=1e-5)
    assert group["dev"]["macro_f1"]["std"] == pytest.approx((0.9 - 2 / 3) / math.sqrt(2))
    assert group["dev"]["accuracy"]["std"] == 0

    result = compare([a, root / "g" / "m-seeds.json"], eval_name="eight")
    column = result["entries"][1]
    assert column["group"] and column["name"] == "m-seeds"
    assert column["summary"]["macro_f1"]["mean"] == pytest.approx(0.78333, abs=1e-5)
    assert result["config_diff"]["training.seed"] == [42, "1,2"]
    # a group's score on a resample is the mean of its runs' macro-F1: observed Δ = (2/3 + 0.9)/2 − 2/3
    assert result["bootstrap"][0]["delta"] == pytest.approx(0.9 / 2 - 1 / 3)
    text = write_comparison(result)
    assert "| macro_f1 | 0.6667 | 0.7833 ± 0.1650 | +0.1167 |" in text


def test_refuses_runs_scored_on_different_data(runs):
    root, data, a, b = runs
    other = root / "other" / "eight.jsonl"  # same name, one label changed
    other.parent.mkdir()
    changed = data.read_text(encoding="utf-8").replace('"label": "neutral"', '"label": "none"')
    other.write_text(changed, encoding="utf-8")
    c = make_run(root, "c", other, eight_rows())
    with pytest.raises(CompareError, match="different data") as err:
        compare([a, c], eval_name="eight")
    assert str(a) in str(err.value) and str(c) in str(err.value)
    with pytest.raises(CompareError, match="no evaluation 'test'"):
        compare([a, b])
    with pytest.raises(CompareError, match="at least 1000"):
        compare([a, b], eval_name="eight", n_resamples=100)
    damaged = root / "broken-seeds.json"
    damaged.write_text('{"runs": [', encoding="utf-8")
    with pytest.raises(ValueError, match=r"broken-seeds\.json: damaged JSON file"):
        compare([a, damaged], eval_name="eight")


def test_bootstrap_f1_equals_sklearn_and_behaves_at_the_extremes():
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 4, 300)
    noisy = np.where(rng.random(300) < 0.5, gold, rng.integers(0, 4, 300))
    index = rng.integers(0, 300, size=(40, 300))
    fast = _macro_f1_batch(gold * 4 + noisy, index, 4)
    slow = [f1_score(gold[i], noisy[i], labels=range(4), average="macro", zero_division=0) for i in index]
    assert np.allclose(fast, slow)

    same = paired_bootstrap(gold, [noisy], [noisy], 4)
    assert same["delta"] == 0 and same["ci_low"] == same["ci_high"] == 0 and same["p_value"] == 1
    better = paired_bootstrap(gold, [noisy], [gold], 4, n_resamples=1000, seed=5)
    # no resample favours the noisy system: p = 2·(0 + 1)/(1000 + 1)
    assert better["ci_low"] > 0 and better["p_value"] == pytest.approx(2 / 1001)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "train.cli", *args], cwd=REPO, capture_output=True, text=True)


def test_seeds_evaluate_and_compare_end_to_end(tiny_run, tmp_path):
    done = run_cli("train", "configs/tfidf.yaml", *mini_overrides(tmp_path, run_name="tf"), "--seeds", "1,2")
    assert done.returncode == 0, done.stderr[-3000:]
    group = json.loads((tmp_path / "tf-seeds.json").read_text(encoding="utf-8"))
    assert group["seeds"] == [1, 2] and group["runs"] == [str(tmp_path / "tf-s1"), str(tmp_path / "tf-s2")]
    assert json.loads((tmp_path / "tf-s2" / "run.json").read_text())["seed"] == 2
    assert "dev macro_f1:" in done.stdout

    # in-process: each CLI call pays seconds of imports, and test_evaluation runs `stance evaluate` itself
    for run in (tiny_run, tmp_path / "tf-s1", tmp_path / "tf-s2"):
        evaluate_run(run, split="test")
    for run in (tiny_run, tmp_path / "tf-s1", tmp_path / "tf-s2"):
        for name in ("metrics.json", "report.md", "report.html", "predictions.jsonl"):
            assert (run / "eval" / "test" / name).is_file()

    html = tmp_path / "compare.html"
    group = tmp_path / "tf-seeds.json"
    done = run_cli("compare", str(tiny_run), str(tmp_path / "tf-s1"), str(group), "--html", str(html))
    assert done.returncode == 0, done.stderr[-3000:]
    tiny = json.loads((tiny_run / "eval" / "test" / "metrics.json").read_text())
    tf = json.loads((tmp_path / "tf-s1" / "eval" / "test" / "metrics.json").read_text())
    assert f"| macro_f1 | {tiny['macro_f1']:.4f} | {tf['macro_f1']:.4f} |" in done.stdout
    assert "| model.type | transformer | tfidf | tfidf |" in done.stdout
    assert f"| tf-s1 − {tiny_run.name} |" in done.stdout and f"| tf-seeds − {tiny_run.name} |" in done.stdout
    assert " ± " in done.stdout  # the seed group's column
    assert html.is_file() and "<table>" in html.read_text(encoding="utf-8")

    with pytest.raises(CompareError, match="no evaluation 'dev'"):
        compare([tiny_run, tmp_path / "tf-s1"], eval_name="dev")
