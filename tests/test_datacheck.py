import json

import pytest

from train import datacheck
from train.data import write_jsonl
from train.mentions import load_gazetteer

GAZETTEER = """
not_countries: [châu Mỹ, Hằng Nga]
entries:
  - {name: Pháp, iso: FR, kind: country, aliases: [], places: [Paris], people: [{name: Emmanuel Macron, role: Tổng thống, aliases: [Macron]}]}
  - {name: Nga, iso: RU, kind: country, aliases: [Liên bang Nga], places: [Điện Kremlin], people: []}
  - {name: Ukraine, iso: UA, kind: country, aliases: [Ukraina], places: [Kiev], people: []}
"""


def row(i, text, country, mention, label, story):
    return {"id": f"x{i}", "text": text, "country": country, "mention": mention, "label": label, "story_id": story}


GOOD = {
    "train": [
        row(1, "Ông Macron tuyên bố Paris sẽ tiếp tục viện trợ cho Ukraina.", "Pháp", "Macron", "pro_ukraine", "s1"),
        row(2, "Ông Macron tuyên bố Paris sẽ tiếp tục viện trợ cho Ukraina.", "Ukraine", "Ukraina", "none", "s1"),
        row(3, "Điện Kremlin bác bỏ đề xuất ngừng bắn của phương Tây.", "Nga", "Điện Kremlin", "pro_russia", "s2"),
    ],
    "dev": [row(4, "Pháp và Nga nối lại kênh liên lạc quân sự sau nhiều tháng.", "Pháp", "Pháp", "none", "s3")],
    "test": [row(5, "Kiev kêu gọi các đồng minh siết chặt lệnh trừng phạt năng lượng.", "Ukraine", "Kiev", "pro_ukraine", "s4")],
}


def write(tmp_path, splits):
    (tmp_path / "countries.yaml").write_text(GAZETTEER, encoding="utf-8")
    paths = {}
    for name, rows in splits.items():
        paths[name] = tmp_path / f"{name}.jsonl"
        write_jsonl(paths[name], rows)
    return paths, tmp_path / "countries.yaml"


def test_good_data_validates_and_counts(tmp_path):
    paths, gazetteer = write(tmp_path, GOOD)
    report = datacheck.validate(paths, gazetteer)
    assert report.ok, report.errors
    numbers = datacheck.stats(report.rows, load_gazetteer(gazetteer))
    assert numbers["examples"] == 5 and numbers["sentences"] == 4 and numbers["stories"] == 4
    assert numbers["multi_country_sentence_share"] == 0.25  # 1 of 4 sentences has two targets
    assert numbers["indirect_mention_share"] == 0.6  # Macron, Điện Kremlin, Kiev of 5 mentions
    assert numbers["labels"] == {"pro_ukraine": 2, "pro_russia": 1, "neutral": 0, "none": 2}
    table = datacheck.stats_markdown(numbers, ["train", "dev", "test"])
    assert "| Pháp | 1 | 0 | 0 | 0 | 0 | 0 | 0 | 1 | 0 | 0 | 0 | 0 | 2 |" in table


@pytest.mark.parametrize(
    "change, message",
    [
        ({"country": "Phap"}, "country 'Phap' is not a canonical name"),
        ({"mention": "Lecornu"}, "mention 'Lecornu' does not occur in the text"),
        ({"text": "Ông Lecornu nói Paris ủng hộ Ukraina.", "mention": "Lecornu"}, "mention 'Lecornu' is not in the gazetteer"),
        ({"mention": "Paris", "country": "Nga"}, "mention 'Paris' resolves to 'Pháp', not 'Nga'"),
        # "Nga" inside a not-a-country phrase is not Russia for the mention finder stance predict uses
        ({"text": "Ca sĩ Hằng Nga bác bỏ tin đồn.", "mention": "Nga"}, "mention 'Nga' is not found as 'Nga' in the text"),
        ({"story_id": "s3"}, "story 's3' also appears in split 'train'"),  # reported where it repeats: dev:1
        ({"id": "x4"}, "id 'x4' already used"),
        ({"story_id": ""}, "missing field(s) story_id"),
    ],
)
def test_each_problem_is_reported_with_file_and_line(tmp_path, change, message):
    splits = json.loads(json.dumps(GOOD))
    splits["train"][2].update(change)
    paths, gazetteer = write(tmp_path, splits)
    report = datacheck.validate(paths, gazetteer)
    where = f"{paths['dev']}:1" if "also appears" in message else f"{paths['train']}:3"
    assert any(message in error and where in error for error in report.errors), report.errors


def test_near_duplicate_across_splits_is_caught(tmp_path):
    splits = json.loads(json.dumps(GOOD))
    splits["test"].append(row(6, "Điện Kremlin bác bỏ đề xuất ngừng bắn của phương Tây!", "Nga", "Điện Kremlin", "pro_russia", "s5"))
    paths, gazetteer = write(tmp_path, splits)
    errors = datacheck.validate(paths, gazetteer).errors
    assert len(errors) == 1 and "near-duplicate sentences across splits train/test" in errors[0]


def test_split_by_story_keeps_stories_whole_and_is_stable():
    rows = [row(i, f"câu {i}", "Pháp", "Pháp", "none", f"story-{i // 4}") for i in range(400)]
    splits = datacheck.split_by_story(rows)
    assert sum(len(part) for part in splits.values()) == 400
    owner = {}
    for name, part in splits.items():
        for r in part:
            assert owner.setdefault(r["story_id"], name) == name
    assert 260 <= len(splits["train"]) <= 300 and 40 <= len(splits["dev"]) <= 80
    # the split depends on story ids, not on input order
    reordered = datacheck.split_by_story(list(reversed(rows)))
    assert {r["id"] for r in reordered["test"]} == {r["id"] for r in splits["test"]}


def test_adding_stories_keeps_the_old_ones_in_place_and_fills_the_short_split():
    old = {"train": [row(1, "a", "Pháp", "Pháp", "none", "s1")] * 7, "dev": [row(2, "b", "Pháp", "Pháp", "none", "s2")] * 3,
           "test": []}  # fmt: skip
    new = [row(3, "c", "Pháp", "Pháp", "none", "s3")] * 2
    splits = datacheck.split_by_story(new, existing=old)
    assert splits["train"] == old["train"] and splits["dev"] == old["dev"] and splits["test"] == new
    with pytest.raises(datacheck.DataError, match="s2"):
        datacheck.split_by_story([row(4, "d", "Pháp", "Pháp", "none", "s2")], existing=old)


def test_agreement_kappa_matches_hand_computation():
    gold = [row(i, "t", "Pháp", "Pháp", label, "s") for i, label in
            enumerate(["pro_ukraine", "pro_ukraine", "pro_russia", "none"])]  # fmt: skip
    second = [{"id": "x0", "label": "pro_ukraine"}, {"id": "x1", "label": "none"},
              {"id": "x2", "label": "pro_russia"}, {"id": "x3", "label": "none"}]  # fmt: skip
    result = datacheck.agreement(gold, second)
    # p_o = 3/4; p_e = (2/4*1/4) + (1/4*1/4) + (1/4*2/4) = 5/16; kappa = (12/16 - 5/16) / (11/16) = 7/11
    assert result["cohen_kappa"] == pytest.approx(7 / 11, abs=1e-4)
    assert result["raw_agreement"] == 0.75 and [d["id"] for d in result["disagreements"]] == ["x1"]
    # an example since left out of the data is listed, not scored; a file sharing no ids is refused
    later = datacheck.agreement(gold, [*second, {"id": "gone", "label": "none"}])
    assert later["not_in_data"] == ["gone"] and later["cohen_kappa"] == result["cohen_kappa"]
    with pytest.raises(datacheck.DataError, match="shares no ids"):
        datacheck.agreement(gold, [{"id": "gone", "label": "none"}])


def test_agreement_command_writes_the_disagreements(tmp_path, capsys):
    from train.cli import main

    write(tmp_path, GOOD)
    second = tmp_path / "second.jsonl"
    # x1 and x5 agree with the data; x3 does not
    second.write_text('{"id": "x1", "label": "pro_ukraine"}\n{"id": "x3", "label": "neutral"}\n'
                      '{"id": "x5", "label": "pro_ukraine"}\n', encoding="utf-8")  # fmt: skip
    out = tmp_path / "disagreements.jsonl"
    assert main(["data", "agreement", "--data-dir", str(tmp_path), "--second", str(second), "--disagreements", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["label"], r["second_label"]) for r in rows] == [("x3", "pro_russia", "neutral")]
    assert "1 disagreement(s)" in capsys.readouterr().out


def test_line_numbers_count_blank_lines(tmp_path):
    paths, gazetteer = write(tmp_path, GOOD)
    bad = dict(GOOD["dev"][0], country="Đức")  # not in this gazetteer
    paths["dev"].write_text("\n\n" + json.dumps(bad, ensure_ascii=False) + "\n", encoding="utf-8")
    errors = datacheck.validate(paths, gazetteer).errors
    assert errors and all(error.startswith(f"{paths['dev']}:3:") for error in errors), errors


def test_a_bad_second_annotation_line_is_named(tmp_path, capsys):
    from train.cli import main

    write(tmp_path, GOOD)
    second = tmp_path / "second.jsonl"
    second.write_bytes(b'{"id": 1, "label": "pro_ukraine"}\n{"id": "x3", "label": "neutral", "note": "caf\xe9"}\n')
    assert main(["data", "agreement", "--data-dir", str(tmp_path), "--second", str(second)]) == 2
    assert f"{second}:2: not UTF-8 text" in capsys.readouterr().err
