"""A batch run classifies each distinct (country, sentence) once and says how many pairs it reused."""

import json

from train.batch import iter_documents, predict_documents
from train.mentions import load_gazetteer
from train.paircache import PairCache

from .test_batch_predict import MINI_GAZ, KeywordPredictor


class CountingPredictor(KeywordPredictor):
    def __init__(self):
        super().__init__()
        self.seen = []

    def predict(self, pairs):
        self.seen.extend(pairs)
        return super().predict(pairs)


def test_each_distinct_pair_is_classified_once_with_the_same_result():
    model = CountingPredictor()
    cache = PairCache(model)
    first = [("Đức", "Đức viện trợ Ukraine."), ("Nga", "Nga phản đối trừng phạt."), ("Đức", "Đức viện trợ Ukraine.")]
    second = [("Nga", "Nga phản đối trừng phạt."), ("Nga", "Đức viện trợ Ukraine.")]  # same sentence, other country
    out = cache.predict(first) + cache.predict(second)
    assert model.seen == [first[0], first[1], second[1]]
    assert [row["reused"] for row in out] == [False, False, True, True, False]
    fresh = KeywordPredictor().predict(first + second)
    assert [(row["label"], row["probs"]) for row in out] == [(row["label"], row["probs"]) for row in fresh]


def test_memory_is_bounded_by_two_generations():
    model = CountingPredictor()
    cache = PairCache(model, max_pairs=2)
    pairs = [("Nga", f"Nga nói lần {number}.") for number in range(7)]
    for pair in pairs:
        cache.predict([pair])
    assert len(cache.new) + len(cache.old) <= 4
    cache.predict([pairs[-1], pairs[0]])  # the newest is still held; the oldest was dropped and runs again
    assert model.seen[-1] == pairs[0] and model.seen.count(pairs[-1]) == 1


def test_batch_reuses_headlines_repeated_across_pages_and_reports_it(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    shared = "Đức công bố gói viện trợ quân sự mới cho Ukraine trị giá 500 triệu USD."
    (pages / "a.txt").write_text(f"{shared}\nNga phản đối trừng phạt của phương Tây.", encoding="utf-8")
    (pages / "b.txt").write_text(f"{shared}\nHungary phản đối trừng phạt mới với Nga.", encoding="utf-8")
    model, gazetteer = CountingPredictor(), load_gazetteer(MINI_GAZ)
    in_shared = len(gazetteer.countries(shared))  # Ukraine, and Đức where the gazetteer has it
    stats = predict_documents(model, iter_documents([str(pages)]), gazetteer, tmp_path / "out",
                              progress=False, pairs_per_step=1)  # one document per step: reuse across steps  # fmt: skip
    assert len(model.seen) == len(set(model.seen)) == stats["pairs"] - stats["reused"]
    assert stats["reused"] == in_shared >= 1
    ledger = {row["article"]: row for row in map(json.loads, (tmp_path / "out" / "documents.jsonl").open())}
    assert (ledger["a.txt"]["reused"], ledger["b.txt"]["reused"]) == (0, in_shared)
    rows = [json.loads(line) for line in (tmp_path / "out" / "sentences.jsonl").open()]
    repeated = [(row["label"], row["probs"]) for row in rows if row["sentence"] == shared and row["country"] == "Ukraine"]
    assert len(repeated) == 2 and repeated[0] == repeated[1]
    summary = (tmp_path / "out" / "summary.md").read_text(encoding="utf-8")
    assert f"{stats['pairs']} (sentence, country) pairs; {in_shared} of them repeated" in summary
