"""Per-article verdict scoring (stance evaluate --articles) against numbers computed by hand."""

import json

import pytest

from train.batch import aggregate
from train.data import LABELS, DataError
from train.verdicts import evaluate_articles, read_gold, score_verdicts, verdicts

from .test_swap import KeywordPredictor

U, R, N, O = LABELS


def sentence(article, country, label, p, index=0):
    rest = (1 - p) / 3
    return {"article": article, "country": country, "sentence_index": index, "sentence": f"{article} {index}",
            "label": label, "probs": {name: p if name == label else rest for name in LABELS}}  # fmt: skip


def test_gold_is_read_in_both_layouts_and_bad_rows_name_the_file(tmp_path):
    ours = tmp_path / "ours.jsonl"
    ours.write_text('{"article": "a.txt", "country": "Pháp", "label": "pro_ukraine", "unambiguous": true}\n\n'
                    '{"article": "a.txt", "country": "Nga", "label": "none"}\n', encoding="utf-8")  # fmt: skip
    assert read_gold(ours) == {("a.txt", "Pháp"): U, ("a.txt", "Nga"): O}
    realdev = tmp_path / "realdev.jsonl"
    realdev.write_text('{"file": "b.txt", "source": "x", "countries": {"Mỹ": "neutral", "Nga": "pro_russia"}}\n',
                       encoding="utf-8")  # fmt: skip
    assert read_gold(realdev) == {("b.txt", "Mỹ"): N, ("b.txt", "Nga"): R}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"article": "a.txt", "country": "Pháp", "label": "ủng hộ"}\n', encoding="utf-8")
    with pytest.raises(DataError, match="bad.jsonl: verdict 1: unknown label"):
        read_gold(bad)
    with pytest.raises(DataError, match="no gold file"):
        read_gold(tmp_path / "missing.jsonl")


def test_min_evidence_keeps_a_hesitant_sentence_from_giving_a_stance():
    rows = [sentence("a", "Anh", U, 0.55, 0), sentence("a", "Anh", O, 0.9, 1)]
    assert aggregate(rows, list(LABELS), min_evidence=0.0)["label"] == U  # without a threshold one is enough
    assert aggregate(rows, list(LABELS))["label"] == O  # the default threshold (MIN_EVIDENCE 0.6) asks for more
    assert aggregate(rows, list(LABELS), min_evidence=0.6)["label"] == O
    confident = [sentence("a", "Anh", U, 0.8, 0), sentence("a", "Anh", O, 0.9, 1)]
    assert aggregate(confident, list(LABELS), min_evidence=0.6)["label"] == U


def test_scores_against_hand_numbers():
    gold = {("a", "Pháp"): U, ("a", "Nga"): R, ("a", "Anh"): O, ("b", "Ấn Độ"): N, ("b", "Mỹ"): U}
    rows = [sentence("a", "Pháp", U, 0.9), sentence("a", "Nga", R, 0.8), sentence("a", "Anh", U, 0.55),
            sentence("b", "Ấn Độ", N, 0.7), sentence("b", "Đức", U, 0.9)]  # fmt: skip
    # Mỹ is never found in b (predicted none); Đức is not in gold (not scored)
    loose = score_verdicts(gold, verdicts(rows, list(LABELS), 0.0), list(LABELS))
    assert loose["n"] == 5 and loose["not_found"] == 1
    # predicted U R U N O against gold U R O N U: right 3 of 5; F1 U 1/2, R 1, N 1, O 0 → macro 5/8
    assert loose["accuracy"] == pytest.approx(3 / 5) and loose["macro_f1"] == pytest.approx(5 / 8)
    assert {(w["country"], w["predicted"], w["found"]) for w in loose["wrong"]} == {("Anh", U, True), ("Mỹ", O, False)}
    strict = score_verdicts(gold, verdicts(rows, list(LABELS), 0.6), list(LABELS))
    # the hesitant Anh sentence no longer counts: U R O N O → right 4 of 5; F1 U 2/3, R 1, N 1, O 2/3 → 5/6
    assert strict["accuracy"] == pytest.approx(4 / 5) and strict["macro_f1"] == pytest.approx(5 / 6)
    assert strict["confusion"][LABELS.index(U)] == [1, 0, 0, 1]


def test_evaluate_articles_writes_the_scores_and_the_sweep(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "a.txt").write_text("Pháp viện trợ pháo cho Ukraine.\n\nẤn Độ đổ lỗi cho NATO.\n", encoding="utf-8")
    (pages / "b.txt").write_text("Thủ tướng Anh Keir Starmer gặp Tổng thống Mỹ tại Nhà Trắng.\n", encoding="utf-8")
    (pages / "gold.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in [
        {"article": "a.txt", "country": "Pháp", "label": U}, {"article": "a.txt", "country": "Ấn Độ", "label": R},
        {"article": "b.txt", "country": "Anh", "label": O}, {"article": "b.txt", "country": "Mỹ", "label": N},
    ]), encoding="utf-8")  # fmt: skip
    out = evaluate_articles(tmp_path / "run", pages, predictor=KeywordPredictor(), min_evidence=0.5)
    assert out == tmp_path / "run" / "eval" / "articles-pages"
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # the keyword model gets Pháp, Ấn Độ and Anh right and calls the Mỹ of b `none` (gold neutral)
    assert metrics["n"] == 4 and metrics["accuracy"] == pytest.approx(3 / 4) and metrics["min_evidence"] == 0.5
    assert [(w["country"], w["gold"], w["predicted"]) for w in metrics["wrong"]] == [("Mỹ", N, O)]
    assert [row["min_evidence"] for row in metrics["sweep"]][:2] == [0.0, 0.5]
    assert metrics["sweep"][-1]["accuracy"] == pytest.approx(1 / 4)  # at 0.95 only the none pair stays right
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| accuracy | 0.7500 |" in report and "| b.txt | Mỹ | neutral | none |" in report
    assert (out / "report.html").is_file() and (out / "batch" / "sentences.jsonl").is_file()
