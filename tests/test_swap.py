"""Country swaps (train/swap.py), counterfactual augmentation, target masking, and the swap metrics of an
evaluation, against hand-made examples and over the whole shipped dev split."""

import json

import pytest

from train.data import LABELS, read_jsonl
from train.evaluation import evaluate_run, swap_metrics
from train.mentions import MASK, load_gazetteer, target_view
from train.swap import BELLIGERENTS, augment_with_swaps, swap_copies, swap_set, swap_text

from .conftest import REPO

U, R, N, O = LABELS


@pytest.fixture(scope="module")
def gaz():
    return load_gazetteer(REPO / "data" / "countries.yaml")


def test_like_for_like_name_capital_and_leader_with_its_title(gaz):
    text = "Tổng thống Pháp Emmanuel Macron nói Paris sẽ viện trợ thêm cho Ukraine, và Pháp không lùi bước."
    swapped, surface = swap_text(text, "Pháp", "Đức", gaz)
    # the leader becomes Germany's leader with his own title, the capital Germany's capital, the name its name
    assert swapped == "Thủ tướng Đức Olaf Scholz nói Berlin sẽ viện trợ thêm cho Ukraine, và Đức không lùi bước."
    assert surface == "Thủ tướng Đức Olaf Scholz"
    assert swap_text("Ông Macron gặp ông Putin.", "Pháp", "Anh", gaz) == ("Ông Keir Starmer gặp ông Putin.", "Keir Starmer")
    # a person becomes the one with the same title where there is one, else the leader, with the leader's title
    assert swap_text("Thủ tướng Meloni nói.", "Italy", "Pháp", gaz)[0] == "Thủ tướng Sébastien Lecornu nói."
    assert swap_text("Tổng thống Macron nói.", "Pháp", "Anh", gaz)[0] == "Thủ tướng Keir Starmer nói."


def test_copies_keep_the_label_never_touch_belligerents_and_skip_countries_already_named(gaz):
    row = {"id": "x1", "text": "Ấn Độ và Trung Quốc kêu gọi Nga và Ukraine đối thoại.", "country": "Ấn Độ", "label": N}
    copies = swap_copies(row, gaz, k=3, seed=0)
    assert len(copies) == 3 and len({c["country"] for c in copies}) == 3
    for copy in copies:
        assert copy["label"] == N and copy["swap_of"] == "x1" and copy["swapped_from"] == "Ấn Độ"
        assert copy["country"] not in ("Ấn Độ", "Trung Quốc", *BELLIGERENTS)  # never one the sentence names
        assert copy["text"].endswith(" và Trung Quốc kêu gọi Nga và Ukraine đối thoại.")
    for belligerent in BELLIGERENTS:
        assert swap_copies({**row, "country": belligerent}, gaz) == []
    # seeded per example: the same seed gives the same copies, another seed other ones
    assert swap_copies(row, gaz, k=3, seed=0) == copies
    assert [c["country"] for c in swap_copies(row, gaz, k=3, seed=1)] != [c["country"] for c in copies]
    bloc = swap_copies({"id": "b", "text": "EU thông qua gói trừng phạt mới đối với Nga.", "country": "EU", "label": U},
                       gaz, k=3)  # fmt: skip
    assert bloc and all(gaz.kinds[c["country"]] == "bloc" for c in bloc)


def test_every_copy_of_the_shipped_dev_split_reads_as_its_new_country(gaz):
    rows = read_jsonl(REPO / "data" / "stance" / "dev.jsonl")
    copies = swap_set(rows, gaz, k=3, seed=0)
    by_id = {row["id"]: row for row in rows}
    third = [row for row in rows if row["country"] not in BELLIGERENTS]
    assert len({c["swap_of"] for c in copies}) >= 0.9 * len(third)  # nearly every third-country example swaps
    for copy in copies:
        original = by_id[copy["swap_of"]]
        before, after = set(gaz.countries(original["text"])), set(gaz.countries(copy["text"]))
        assert copy["label"] == original["label"] and original["country"] not in BELLIGERENTS
        # the gazetteer resolves the new mention to the new country; every other country stays as it was
        assert copy["mention"] in copy["text"] and copy["country"] in gaz.countries(copy["mention"])
        assert after == (before - {original["country"]}) | {copy["country"]}
        assert gaz.kinds[copy["country"]] == gaz.kinds[original["country"]]


def test_augmentation_is_deterministic_per_seed_and_leaves_belligerents_alone(gaz):
    rows = read_jsonl(REPO / "data" / "stance" / "dev.jsonl")
    once, again = augment_with_swaps(rows, gaz, 0.5, seed=7), augment_with_swaps(rows, gaz, 0.5, seed=7)
    assert once == again and len(once) == len(rows)
    assert augment_with_swaps(rows, gaz, 0.5, seed=8) != once
    assert augment_with_swaps(rows, gaz, 0.0, seed=7) == rows
    changed = [(old, new) for old, new in zip(rows, once) if old != new]
    third = sum(row["country"] not in BELLIGERENTS for row in rows)
    assert 0.3 * third < len(changed) < 0.7 * third  # about half of the third-country rows
    for old, new in changed:
        assert old["country"] not in BELLIGERENTS and new["label"] == old["label"] and new["swap_of"] == old["id"]
    assert all(new == old for old, new in zip(rows, once) if old["country"] in BELLIGERENTS)
    everything = augment_with_swaps(rows, gaz, 1.0, seed=7)
    assert sum(old != new for old, new in zip(rows, everything)) >= 0.9 * third


def test_masking_hides_a_third_country_but_never_a_belligerent(gaz):
    text = "Tổng thống Pháp Emmanuel Macron gặp ông Putin; Paris nói Nga phải rút quân."
    assert target_view(text, "Pháp", gaz, mask=True) == (MASK, f"{MASK} gặp ông Putin; {MASK} nói Nga phải rút quân.")
    assert target_view(text, "Pháp", gaz, mask=True, mark=True) == (
        MASK, f"« {MASK} » gặp ông Putin; « {MASK} » nói Nga phải rút quân.")  # fmt: skip
    assert target_view(text, "Nga", gaz, mask=True) == ("Nga", text)
    assert target_view(text, "Pháp", gaz) == ("Pháp", text)
    # a masked model reads a swap copy exactly as it reads the original: invariant by construction
    row = {"id": "m", "text": text, "country": "Pháp", "label": U}
    for copy in swap_copies(row, gaz, k=3):
        assert target_view(copy["text"], copy["country"], gaz, mask=True) == target_view(text, "Pháp", gaz, mask=True)


def test_swap_metrics_against_hand_numbers():
    def row(key, gold, predicted, p=0.8, **extra):
        return {"id": key, "text": key, "country": "X", "gold": gold, "predicted": predicted,
                "probs": {name: p if name == predicted else (1 - p) / 3 for name in LABELS}, **extra}  # fmt: skip

    originals = [row("a", U, U), row("b", N, N), row("c", O, U)]
    copies = [
        row("a~1", U, U, swap_of="a", swapped_from="Pháp"), row("a~2", U, R, 0.9, swap_of="a", swapped_from="Pháp"),
        row("b~1", N, N, swap_of="b", swapped_from="Ấn Độ"), row("b~2", N, O, 0.6, swap_of="b", swapped_from="Ấn Độ"),
        row("c~1", O, O, swap_of="c", swapped_from="Italy"), row("c~2", O, U, swap_of="c", swapped_from="Italy"),
    ]  # fmt: skip
    for copy in copies:
        copy["country"] = "Y"
    result = swap_metrics(originals, copies)
    assert result["n_originals"] == 3 and result["n_copies"] == 6
    assert result["consistency"] == pytest.approx(3 / 6)  # a~1, b~1, c~2 agree with their originals
    # copies: gold U U N N O O, predicted U R N O O U → F1 U 1/2, R 0, N 2/3, O 1/2 → macro 5/12
    assert result["macro_f1"] == pytest.approx((1 / 2 + 0 + 2 / 3 + 1 / 2) / 4)
    # originals: gold U N O, predicted U N U → F1 U 2/3, R 0, N 1, O 0 → macro 5/12
    assert result["original_macro_f1"] == pytest.approx((2 / 3 + 0 + 1 + 0) / 4)
    flips = result["worst_flips"]
    assert [(f["id"], f["swapped"], f["from"]) for f in flips] == [("a", R, "Pháp"), ("c", O, "Italy"), ("b", O, "Ấn Độ")]


class KeywordPredictor:
    """A stand-in model that reads the act: aid is pro_ukraine, blaming NATO pro_russia, anything else none."""

    labels = list(LABELS)
    gazetteer = None

    def predict(self, pairs):
        out = []
        for _, text in pairs:
            label = U if "viện trợ" in text else R if "đổ lỗi" in text else O
            out.append({"label": label, "probs": {n: 0.85 if n == label else 0.05 for n in LABELS}})
        return out


def test_evaluation_reports_swap_figures_and_the_worst_flips(tmp_path, gaz):
    data = tmp_path / "swapme.jsonl"
    rows = [{"id": "s1", "text": "Pháp viện trợ pháo cho Ukraine.", "country": "Pháp", "label": U},
            {"id": "s2", "text": "Pháp viện trợ pháo cho Ukraine.", "country": "Ukraine", "label": O},
            {"id": "s3", "text": "Ấn Độ đổ lỗi cho NATO.", "country": "Ấn Độ", "label": R}]  # fmt: skip
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = evaluate_run(tmp_path / "run", data=data, predictor=KeywordPredictor(), swaps=2)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["swap"]["n_originals"] == 2 and metrics["swap"]["n_copies"] == 4  # Ukraine is never swapped
    assert metrics["swap_consistency"] == 1.0 and metrics["swap_macro_f1"] == metrics["swap"]["original_macro_f1"]
    swapped = [json.loads(line) for line in (out / "swaps.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {row["swap_of"] for row in swapped} == {"s1", "s3"} and all(row["gold"] != O for row in swapped)
    assert "| swap consistency | 1.0000 |" in (out / "report.md").read_text(encoding="utf-8")
    assert evaluate_run(tmp_path / "run", data=data, predictor=KeywordPredictor(), swaps=0, name="plain").name == "plain"
