"""The TF-IDF baseline: target-aware features, a pickle-free run folder that reloads to the same probabilities,
and the same train → predict → evaluate path as the transformer runs."""

import json
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp

from train.config import ConfigError, load_config
from train.data import LABELS, read_jsonl
from train.fit import fit
from train.predict import load_predictor
from train.mentions import load_gazetteer
from train.segment import get_segmenter
from train.tfidf import Featurizer, TfidfPredictor, replace_target, target_features, train_model, transform

from .conftest import MINI, REPO, mini_overrides

TFIDF = REPO / "configs" / "tfidf.yaml"


def test_config_file_loads_with_its_own_section():
    cfg = load_config(TFIDF)
    assert cfg.model.type == "tfidf" and cfg.run_name == "tfidf"
    assert cfg.data.train == "data/stance/train.jsonl" and cfg.data.test == "data/stance/test.jsonl"
    assert (cfg.model.tfidf.word_ngram_max, cfg.model.tfidf.char_ngram_max, cfg.model.tfidf.C) == (2, 5, 10.0)
    assert load_config(TFIDF, ["model.tfidf.C=0.5"]).model.tfidf.C == 0.5
    with pytest.raises(ConfigError, match="model.tfidf.char_ngram_max"):
        load_config(TFIDF, ["model.tfidf.char_ngram_max=1"])
    with pytest.raises(ConfigError, match="unknown key 'model.tfidf.ngram'"):
        load_config(TFIDF, ["model.tfidf.ngram=3"])


def test_target_is_marked_and_its_neighbours_become_features():
    assert replace_target("Pháp và pháp luật; Pháp.", "Pháp") == ("TARGET và pháp luật; TARGET.", True)  # case matters
    assert replace_target("Nga phản đối", "Anh") == ("Nga phản đối", False)
    assert replace_target("Nigeria tăng", "Nig")[1] is False  # only whole words
    features = target_features("Ông nói TARGET tăng viện_trợ cho Ukraine".split(), "Trung Quốc", window=2).split()
    assert features[0] == "c=trung_quốc"
    assert {"L=ông", "L=nói", "R=tăng", "R=viện_trợ", "L1=nói", "R1=tăng", "c=trung_quốc|R=viện_trợ"} <= set(features)
    assert "R=cho" not in features  # outside the window of 2
    gazetteer = load_gazetteer(REPO / "data" / "countries.yaml")
    text = "Tổng thống Putin nói Điện Kremlin sẵn sàng, còn Nga Sơn thì không."
    assert replace_target(text, "Nga", gazetteer) == ("TARGET nói TARGET sẵn sàng, còn Nga Sơn thì không.", True)
    # without the gazetteer only the bare name counts, even inside the place name Nga Sơn
    assert replace_target(text, "Nga") == (text.replace("Nga Sơn", "TARGET Sơn"), True)
    texts = Featurizer(get_segmenter("pyvi"), window=3)([("Đức", "Đức tăng viện trợ cho Ukraine.")])
    assert texts["word"][0].startswith("TARGET ") and "viện_trợ" in texts["word"][0]
    assert {"c=đức", "c=đức|R=cho", "c=đức|R=ukraine"} <= set(texts["target"][0].split())


def test_stored_arrays_reproduce_sklearn_probabilities():
    cfg = load_config(TFIDF, mini_overrides(REPO / "unused"))
    segmenter = get_segmenter("pyvi")
    rows = read_jsonl(MINI / "train.jsonl")
    params, arrays, classifier = train_model(rows, cfg, segmenter)
    assert params["classes"] == list(LABELS) and arrays["coef"].shape[0] == 4
    test = read_jsonl(MINI / "test.jsonl")
    pairs = [(row["country"], row["text"]) for row in test]
    # JSON round trip, as the run folder stores them
    params = json.loads(json.dumps(params))
    texts = Featurizer(segmenter, params["window"])(pairs)
    blocks = {name: {**block, "idf": arrays[f"idf_{name}"]} for name, block in params["blocks"].items()}
    features = transform(texts, blocks)
    # the reference: sklearn's own TfidfVectorizer + LogisticRegression, refitted the same way
    from sklearn.feature_extraction.text import TfidfVectorizer

    train_texts = Featurizer(segmenter, params["window"])([(row["country"], row["text"]) for row in rows])
    reference = []
    for name, block in params["blocks"].items():
        spec = {**block["spec"], "ngram_range": tuple(block["spec"]["ngram_range"])}
        vectorizer = TfidfVectorizer(**spec, sublinear_tf=True, max_features=cfg.model.tfidf.max_features)
        vectorizer.fit(train_texts[name])
        reference.append(vectorizer.transform(texts[name]))
    reference = sp.hstack(reference, format="csr")
    assert np.allclose(features.toarray(), reference.toarray(), atol=1e-12)
    ours = TfidfPredictor(params, arrays, list(LABELS), segmenter).predict(pairs)
    expected = classifier.predict_proba(reference)
    assert np.allclose([[row["probs"][name] for name in LABELS] for row in ours], expected, atol=1e-10)


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    return fit(load_config(TFIDF, mini_overrides(tmp_path_factory.mktemp("runs"), run_name="tf")))


def test_run_folder_has_no_pickle_and_predicts_through_predictor(tfidf_run):
    run = tfidf_run
    assert sorted(p.name for p in (run / "model").iterdir()) == ["README.md", "gazetteer.yaml", "params.json", "weights.npz"]
    with np.load(run / "model" / "weights.npz", allow_pickle=False) as npz:  # fails if anything is pickled
        assert {"coef", "intercept", "idf_word", "idf_char", "idf_target"} == set(npz.files)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert info["status"] == "complete" and info["model_type"] == "tfidf" and info["labels"] == list(LABELS)
    assert info["segmenter"]["name"] == "pyvi" and len(info["data"]["train"]["sha256"]) == 64
    assert info["gazetteer"]["path"].endswith("countries.yaml") and len(info["gazetteer"]["sha256"]) == 64
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["best_dev"]["macro_f1"] > 0.7, "the fixture's signal is plain enough for n-grams"

    predictor = load_predictor(run)
    assert isinstance(predictor, TfidfPredictor)
    out = predictor.predict([
        ("Đức", "Đức công bố gói viện trợ quân sự mới cho Ukraine trị giá 500 triệu USD."),
        ("Đức", "Đức khai trương tuyến đường sắt cao tốc mới dài 500 km."),
    ])  # fmt: skip
    assert [row["label"] for row in out] == ["pro_ukraine", "none"]
    # the run reads its own copy of the gazetteer: an alias (Berlin → Đức) is marked as the target
    assert predictor.gazetteer is not None
    assert replace_target("Berlin tăng viện trợ", "Đức", predictor.gazetteer)[0] == "TARGET tăng viện trợ"
    assert all(set(row["probs"]) == set(LABELS) and abs(sum(row["probs"].values()) - 1) < 1e-9 for row in out)


def test_missing_class_gets_zero_probability(tmp_path):
    cfg = load_config(TFIDF, mini_overrides(tmp_path))
    rows = [row for row in read_jsonl(MINI / "train.jsonl") if row["label"] in ("pro_ukraine", "none")]
    params, arrays, _ = train_model(rows, cfg, get_segmenter("none"))
    assert params["classes"] == ["pro_ukraine", "none"] and arrays["coef"].shape[0] == 1  # binary: one row
    out = TfidfPredictor(params, arrays, list(LABELS), get_segmenter("none")).predict([("Pháp", "Pháp viện trợ")])
    assert out[0]["probs"]["pro_russia"] == 0 and out[0]["probs"]["neutral"] == 0
    assert out[0]["probs"]["pro_ukraine"] + out[0]["probs"]["none"] == pytest.approx(1)


def test_cli_predict_dispatches_to_the_baseline(tfidf_run):
    # `stance train` and `stance evaluate` run the baseline from the CLI in test_compare's end-to-end test
    text = "Hungary tiếp tục phản đối trừng phạt Nga."
    done = subprocess.run([sys.executable, "-m", "train.cli", "predict", str(tfidf_run), "--country", "Hungary",
                           "--text", text], cwd=REPO, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["label"] == "pro_russia" and set(result["probs"]) == set(LABELS)
