"""Evaluation metrics against numbers computed by hand on 8 examples, the files `stance evaluate` writes,
and the local `evaluate` modules (loaded by path, offline) agreeing with train/evaluation.py."""

import json
import socket

import numpy as np
import pytest

from train.data import LABELS, sha256_file
from train.evaluation import compute_metrics, evaluate_run, reliability

from .conftest import REPO

U, R, N, O = LABELS  # pro_ukraine, pro_russia, neutral, none

# (gold, predicted, confidence of the predicted label, country). The other three labels share the rest equally.
EIGHT = [
    (U, U, 0.92, "Pháp"),
    (U, U, 0.83, "Pháp"),
    (U, R, 0.62, "Pháp"),
    (R, R, 0.74, "Pháp"),
    (R, O, 0.95, "Nga"),
    (N, N, 0.55, "Nga"),
    (O, O, 0.66, "Nga"),
    (O, U, 0.45, "Nga"),
]


def probs_for(predicted, confidence):
    return {name: confidence if name == predicted else (1 - confidence) / 3 for name in LABELS}


def eight_rows():
    return [
        {"id": f"ex-{i}", "text": f"câu số {i}", "country": country, "gold": gold, "predicted": predicted,
         "probs": probs_for(predicted, confidence)}
        for i, (gold, predicted, confidence, country) in enumerate(EIGHT, start=1)
    ]  # fmt: skip


# By hand:
#   pro_ukraine: tp 2 (ex-1, ex-2), fp 1 (ex-8), fn 1 (ex-3) → P = R = F1 = 2/3
#   pro_russia:  tp 1 (ex-4), fp 1 (ex-3), fn 1 (ex-5)       → 1/2
#   neutral:     tp 1 (ex-6)                                  → 1
#   none:        tp 1 (ex-7), fp 1 (ex-5), fn 1 (ex-8)        → 1/2
#   accuracy 5/8; macro-F1 (2/3 + 1/2 + 1 + 1/2) / 4 = 2/3; F_avg (2/3 + 1/2) / 2 = 7/12
# ECE, 10 bins (lo, hi]: (0.9,1]: 0.92 ✓, 0.95 ✗ → 2/8·|0.5 − 0.935| = 0.10875
#   (0.8,0.9]: 0.83 ✓ → 1/8·0.17 = 0.02125   (0.7,0.8]: 0.74 ✓ → 1/8·0.26 = 0.0325
#   (0.6,0.7]: 0.62 ✗, 0.66 ✓ → 2/8·|0.5 − 0.64| = 0.035   (0.5,0.6]: 0.55 ✓ → 1/8·0.45 = 0.05625
#   (0.4,0.5]: 0.45 ✗ → 1/8·0.45 = 0.05625                  sum = 0.31
# Pháp (ex-1..4): gold U U U R, predicted U U R R → accuracy 3/4; U F1 4/5, R F1 2/3 → macro 11/15
# Nga (ex-5..8): gold R N O O, predicted O N O U → accuracy 1/2; U 0, R 0, N 1, O 1/2 → macro 3/8
HAND = {"accuracy": 5 / 8, "macro_f1": 2 / 3, "f_avg": 7 / 12, "ece": 0.31}


def test_metrics_match_hand_computed_numbers():
    m = compute_metrics(eight_rows())
    assert m["n"] == 8
    assert m["accuracy"] == pytest.approx(HAND["accuracy"])
    assert m["macro_f1"] == pytest.approx(HAND["macro_f1"])
    assert m["f_avg"] == pytest.approx(HAND["f_avg"])
    assert m["calibration"]["ece"] == pytest.approx(HAND["ece"])
    assert m["per_class"][U] == pytest.approx({"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_class"][R] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"][N] == pytest.approx({"precision": 1, "recall": 1, "f1": 1, "support": 1})
    assert m["per_class"][O] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["confusion"] == [[2, 1, 0, 0], [0, 1, 0, 1], [0, 0, 1, 0], [1, 0, 0, 1]]
    assert m["per_country"]["Pháp"] == pytest.approx({"support": 4, "accuracy": 0.75, "macro_f1": 11 / 15})
    assert m["per_country"]["Nga"] == pytest.approx({"support": 4, "accuracy": 0.5, "macro_f1": 3 / 8})
    errors = m["confident_errors"]
    assert [(e["id"], e["gold"], e["predicted"]) for e in errors] == [("ex-5", R, O), ("ex-3", U, R), ("ex-8", O, U)]
    assert [e["confidence"] for e in errors] == pytest.approx([0.95, 0.62, 0.45])
    assert errors[0]["text"] == "câu số 5" and errors[0]["country"] == "Nga"
    bins = m["calibration"]["bins"]
    assert [b["count"] for b in bins] == [0, 0, 0, 0, 1, 1, 2, 1, 1, 2]
    assert bins[9]["accuracy"] == 0.5 and bins[9]["confidence"] == pytest.approx(0.935)


def test_ece_bin_edges_belong_to_the_lower_bin():
    # 0.5 lies in (0.4, 0.5]; 1.0 in (0.9, 1.0]; a correct 0.5 and a wrong 1.0 → 1/2·0.5 + 1/2·1 = 0.75
    probs = np.array([[0.5, 0.5, 0, 0], [1.0, 0, 0, 0]])
    result = reliability(probs, [0, 1])
    assert [b["count"] for b in result["bins"]][4] == 1 and result["bins"][9]["count"] == 1
    assert result["ece"] == pytest.approx(0.75)


class FixedPredictor:
    """Stands in for a trained model: returns the hand-made predictions of EIGHT, looked up by sentence."""

    labels = list(LABELS)

    def __init__(self, rows):
        self.by_text = {row["text"]: row for row in rows}

    def predict(self, pairs):
        return [{"label": self.by_text[text]["predicted"], "probs": self.by_text[text]["probs"]} for _, text in pairs]


def write_eight(path):
    rows = eight_rows()
    path.write_text("".join(json.dumps({"id": r["id"], "text": r["text"], "country": r["country"], "label": r["gold"]},
                                       ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")  # fmt: skip
    return rows


def test_evaluate_run_writes_every_file_with_the_hand_numbers(tmp_path):
    data = tmp_path / "eight.jsonl"
    rows = write_eight(data)
    out = evaluate_run(tmp_path / "run", data=data, predictor=FixedPredictor(rows))
    assert out == tmp_path / "run" / "eval" / "eight"
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "predictions.jsonl", "report.html", "report.md",
                                                   "swaps.jsonl"]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["data"] == {"path": str(data), "sha256": sha256_file(data), "n": 8}
    assert metrics["macro_f1"] == pytest.approx(2 / 3) and metrics["f_avg"] == pytest.approx(7 / 12)
    assert metrics["calibration"]["ece"] == pytest.approx(0.31)
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(predictions) == 8
    assert set(predictions[0]) == {"id", "text", "country", "gold", "predicted", "probs"}
    assert predictions[4]["id"] == "ex-5" and predictions[4]["predicted"] == O
    assert set(predictions[4]["probs"]) == set(LABELS)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| macro-F1 | 0.6667 |" in report and "| F_avg (pro_ukraine, pro_russia) | 0.5833 |" in report
    assert "| ECE | 0.3100 |" in report
    assert "| Pháp | 4 | 0.7500 | 0.7333 |" in report and "| Nga | 4 | 0.5000 | 0.3750 |" in report
    assert "| câu số 5 | Nga | pro_russia | none | 0.9500 |" in report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3 and "<table>" in page


def test_evaluate_split_reads_the_run_config_and_a_bad_split_is_refused(tmp_path):
    data = tmp_path / "eight.jsonl"
    rows = write_eight(data)
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"data:\n  test: {data}\n", encoding="utf-8")
    out = evaluate_run(run, split="test", predictor=FixedPredictor(rows))
    assert out.name == "test" and json.loads((out / "metrics.json").read_text())["name"] == "test"
    with pytest.raises(ValueError, match="unknown split 'valid'"):
        evaluate_run(run, split="valid", predictor=FixedPredictor(rows))


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails the test: the metric modules must load from disk alone."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_local_evaluate_modules_load_offline_and_agree_with_sklearn_code(no_network):
    import evaluate

    rows = eight_rows()
    gold = [LABELS.index(r["gold"]) for r in rows]
    predicted = [LABELS.index(r["predicted"]) for r in rows]
    probs = [[r["probs"][name] for name in LABELS] for r in rows]
    ours = compute_metrics(rows)

    f1 = evaluate.load(str(REPO / "metrics" / "stance_f1")).compute(predictions=predicted, references=gold)
    assert f1["macro_f1"] == pytest.approx(ours["macro_f1"]) == pytest.approx(2 / 3)
    assert f1["f_avg"] == pytest.approx(ours["f_avg"]) == pytest.approx(7 / 12)
    assert [f1[f"f1_{name}"] for name in LABELS] == pytest.approx([ours["per_class"][n]["f1"] for n in LABELS])

    ece = evaluate.load(str(REPO / "metrics" / "stance_ece")).compute(predictions=probs, references=gold)
    assert ece["ece"] == pytest.approx(ours["calibration"]["ece"]) == pytest.approx(0.31)

    combined = evaluate.combine([str(REPO / "metrics" / "stance_f1"), str(REPO / "metrics" / "stance_accuracy")])
    both = combined.compute(predictions=predicted, references=gold)
    assert both["accuracy"] == pytest.approx(5 / 8) and both["macro_f1"] == pytest.approx(2 / 3)


def test_evaluate_cli_on_the_tiny_run(tiny_run):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "train.cli", "evaluate", str(tiny_run), "--split", "test"],
                          cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = tiny_run / "eval" / "test"
    assert done.stdout.strip().endswith(str(out))
    predictions = [json.loads(line) for line in (out / "predictions.jsonl").read_text(encoding="utf-8").splitlines()]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # the stored numbers are those of the stored predictions, recomputed independently
    assert metrics["n"] == len(predictions) == 56
    assert metrics["accuracy"] == pytest.approx(np.mean([p["gold"] == p["predicted"] for p in predictions]))
    assert metrics == {**metrics, **{k: v for k, v in compute_metrics(predictions).items()}}
    assert all(abs(sum(p["probs"].values()) - 1) < 1e-5 for p in predictions)
    assert f"macro-F1 {metrics['macro_f1']:.4f}" in done.stdout


def test_evaluating_other_data_never_overwrites_the_official_test_evaluation(tiny_run, tmp_path):
    import shutil
    import subprocess
    import sys

    from .conftest import MINI

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run, ignore=shutil.ignore_patterns("eval"))

    def evaluate(*args):
        return subprocess.run([sys.executable, "-m", "train.cli", "evaluate", str(run), *args], cwd=REPO,
                              capture_output=True, text=True)  # fmt: skip

    assert evaluate("--split", "test").returncode == 0
    official = (run / "eval" / "test" / "metrics.json").read_bytes()
    other = tmp_path / "other" / "test.jsonl"  # another file that happens to be called test.jsonl
    other.parent.mkdir()
    other.write_text("".join((MINI / "test.jsonl").read_text(encoding="utf-8").splitlines(True)[:10]), encoding="utf-8")
    done = evaluate("--data", str(other))
    assert done.returncode == 2 and "--force" in done.stderr and str(run / "eval" / "test") in done.stderr
    assert (run / "eval" / "test" / "metrics.json").read_bytes() == official
    assert evaluate("--data", str(MINI / "test.jsonl")).returncode == 0  # the same data again: fine
    shutil.copy(other, tmp_path / "ten.jsonl")
    assert evaluate("--data", str(tmp_path / "ten.jsonl")).returncode == 0  # named after its file
    assert json.loads((run / "eval" / "ten" / "metrics.json").read_text(encoding="utf-8"))["n"] == 10
    assert evaluate("--data", str(other), "--force").returncode == 0
    assert json.loads((run / "eval" / "test" / "metrics.json").read_text(encoding="utf-8"))["n"] == 10


def test_pairs_marked_hard_are_also_scored_without(tmp_path):
    # realdev marks contestable pairs with a note "hard: ..." and asks for scores with and without them.
    # Without ex-3 and ex-5 (both wrong): gold U U R N O O, predicted U U R N O U → accuracy 5/6;
    # F1 U 4/5 (tp 2, fp 1), R 1, N 1, O 2/3 (tp 1, fn 1) → macro-F1 (4/5 + 1 + 1 + 2/3) / 4 = 13/15.
    data = tmp_path / "eight.jsonl"
    rows = write_eight(data)
    marked = [{**json.loads(line), **({"note": "hard: either reading"} if i in (2, 4) else {"note": "clear"})}
              for i, line in enumerate(data.read_text(encoding="utf-8").splitlines())]  # fmt: skip
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in marked), encoding="utf-8")
    metrics = json.loads((evaluate_run(tmp_path / "run", data=data, predictor=FixedPredictor(rows)) / "metrics.json")
                         .read_text(encoding="utf-8"))  # fmt: skip
    assert metrics["macro_f1"] == pytest.approx(2 / 3)  # every pair still counts in the main score
    assert metrics["not_hard"] == pytest.approx({"n": 6, "n_hard": 2, "accuracy": 5 / 6, "macro_f1": 13 / 15})
    assert metrics["macro_f1_not_hard"] == pytest.approx(13 / 15)
    report = (tmp_path / "run" / "eval" / "eight" / "report.md").read_text(encoding="utf-8")
    assert "| macro-F1 without the 2 pairs marked hard | 0.8667 |" in report


def test_data_without_hard_marks_has_no_such_score(tmp_path):
    data = tmp_path / "eight.jsonl"
    rows = write_eight(data)
    metrics = json.loads((evaluate_run(tmp_path / "run", data=data, predictor=FixedPredictor(rows)) / "metrics.json")
                         .read_text(encoding="utf-8"))  # fmt: skip
    assert metrics["not_hard"] is None and metrics["macro_f1_not_hard"] is None
    assert "marked hard" not in (tmp_path / "run" / "eval" / "eight" / "report.md").read_text(encoding="utf-8")
