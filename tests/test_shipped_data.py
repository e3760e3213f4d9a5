"""The shipped dataset passes `stance data validate` and keeps the size and spread the data card reports."""

import json

import pytest

from train import datacheck
from train.mentions import load_gazetteer

from .conftest import REPO

DATA = REPO / "data"
SPLITS = {name: DATA / "stance" / f"{name}.jsonl" for name in ("train", "dev", "test")}


@pytest.fixture(scope="module")
def report():
    return datacheck.validate(SPLITS, DATA / "countries.yaml")


def test_shipped_data_validates(report):
    assert report.errors == []


def test_shipped_data_keeps_its_size_and_spread(report):
    numbers = datacheck.stats(report.rows, load_gazetteer(DATA / "countries.yaml"))
    assert numbers["examples"] >= 3000 and numbers["sentences"] >= 1500
    assert numbers["countries_besides_belligerents"] >= 40
    assert min(numbers["label_share"].values()) >= 0.15, numbers["label_share"]
    assert numbers["multi_country_sentence_share"] >= 0.30
    assert numbers["indirect_mention_share"] >= 0.25
    shares = {split: n / numbers["examples"] for split, n in numbers["examples_per_split"].items()}
    assert abs(shares["train"] - 0.70) < 0.03 and abs(shares["dev"] - 0.15) < 0.03 and abs(shares["test"] - 0.15) < 0.03


def test_sample_articles_have_gold_for_every_page():
    pages = {p.name for p in (DATA / "articles").iterdir() if p.suffix in (".txt", ".html")}
    gold = [json.loads(line) for line in (DATA / "articles" / "gold.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(pages) >= 12 and {row["article"] for row in gold} == pages
    assert all(row["label"] in ("pro_ukraine", "pro_russia", "neutral", "none") for row in gold)
