"""Every finished run writes RUN/model/README.md, a Hugging Face model card that `stance evaluate` keeps current."""

import json
import shutil

import yaml

from train.config import load_config
from train.evaluation import evaluate_run
from train.fit import fit
from train.modelcard import base_model

from .conftest import MINI, REPO, mini_overrides


def front_matter(card_path):
    text = card_path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    head, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(head), body


def index_values(meta, split):
    """{metric name: value} of one split's model-index entry."""
    [entry] = [r for r in meta["model-index"][0]["results"] if r["dataset"]["split"] == split]
    return {m["name"]: m["value"] for m in entry["metrics"]}


def test_transformer_card_parses_and_the_folder_still_loads_in_a_pipeline(tiny_run, tmp_path):
    from transformers import pipeline

    run = shutil.copytree(tiny_run, tmp_path / "run")
    meta, body = front_matter(run / "model" / "README.md")
    assert meta["language"] == ["vi"] and meta["license"] == "mit" and meta["pipeline_tag"] == "text-classification"
    assert "base_model" not in meta  # trained from scratch: no hub model to name
    assert "stance-detection" in meta["tags"] and meta["library_name"] == "transformers"
    dev = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["best_dev"]
    assert index_values(meta, "dev")["macro-F1"] == round(dev["macro_f1"], 4)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert info["data"]["train"]["sha256"] in body and "## Limitations" in body and "## Intended use" in body
    assert all(f"`{label}`" in body for label in info["labels"])
    assert 'pipeline("text-classification"' in body and f"stance predict {tiny_run} " in body  # as trained

    classifier = pipeline("text-classification", model=str(run / "model"), top_k=None)
    scores = classifier({"text": "Đức", "text_pair": "Đức viện_trợ quân_sự cho Ukraine ."})
    assert {row["label"] for row in scores} == set(info["labels"])

    # stance evaluate rewrites the card with a test row and a realdev row (named so from the data path).
    evaluate_run(run, split="test")
    realdev = tmp_path / "realdev" / "sentences.jsonl"
    realdev.parent.mkdir()
    shutil.copy(MINI / "dev.jsonl", realdev)
    evaluate_run(run, data=realdev)
    meta, body = front_matter(run / "model" / "README.md")
    test = json.loads((run / "eval" / "test" / "metrics.json").read_text(encoding="utf-8"))
    values = index_values(meta, "test")
    assert (values["macro-F1"], values["accuracy"]) == (round(test["macro_f1"], 4), round(test["accuracy"], 4))
    if test.get("swap_consistency") is not None:  # the country-swap check of stance evaluate
        assert values["swap consistency"] == round(test["swap_consistency"], 4) and "| data | swap consistency |" in body
    assert "realdev" in {r["dataset"]["split"] for r in meta["model-index"][0]["results"]}
    assert f"| test | {test['n']} | {test['accuracy']:.4f} | {test['macro_f1']:.4f} |" in body
    assert f"stance predict {run} " in body  # the folder it was rewritten in


def test_tfidf_run_has_a_card_in_its_model_folder(tmp_path):
    run = fit(load_config(REPO / "configs" / "tfidf.yaml", mini_overrides(tmp_path, run_name="tf")))
    meta, body = front_matter(run / "model" / "README.md")
    assert meta["pipeline_tag"] == "text-classification" and "tfidf" in meta["tags"] and "library_name" not in meta
    dev = json.loads((run / "metrics.json").read_text(encoding="utf-8"))["best_dev"]
    assert index_values(meta, "dev")["macro-F1"] == round(dev["macro_f1"], 4)
    assert "cannot load it" in body and f"stance predict {run} " in body


def test_base_model_names_the_hub_model_behind_a_source():
    assert base_model({"model_source": "bundled:e5-small"}) == "intfloat/multilingual-e5-small"
    assert base_model({"model_source": "vinai/phobert-base"}) == "vinai/phobert-base"
    assert base_model({"model_source": "scratch"}) is None
    assert base_model({"model_source": str(REPO)}) is None  # a local folder is not a hub id
