import json

import pytest

from train.data import LABELS, DataError, load_splits, read_json, read_jsonl, sha256_file

from .conftest import MINI


def test_fixture_loads_with_integer_labels():
    data = load_splits({"train": MINI / "train.jsonl", "dev": MINI / "dev.jsonl"})
    assert set(data) == {"train", "dev"}
    assert set(data["train"]["label"]) == set(range(len(LABELS)))
    assert data["train"].column_names == ["id", "text", "country", "label"]


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", r"bad\.jsonl:2: not valid JSON"),
        ("[1, 2]", r"bad\.jsonl:2: expected a JSON object"),
        (json.dumps({"id": "x", "text": "Pháp ủng hộ.", "country": "Pháp"}), r"bad\.jsonl:2: missing or empty field\(s\): label"),
        (json.dumps({"id": "x", "text": "Pháp.", "country": "Pháp", "label": "pro_france"}), r"bad\.jsonl:2: unknown label 'pro_france'"),
        (json.dumps({"id": "x", "text": 12, "country": "Pháp", "label": "none"}), r"bad\.jsonl:2: field\(s\) must be text: text \(int\)"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line, message):
    good = json.dumps({"id": "a", "text": "Pháp viện trợ cho Ukraine.", "country": "Pháp", "label": "pro_ukraine"})
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_jsonl(path)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_jsonl(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no examples"):
        read_jsonl(tmp_path / "empty.jsonl")


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    path = tmp_path / "x.bin"
    path.write_bytes(b"abc" * 1000)
    assert sha256_file(path) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_numeric_ids_are_read_as_text_and_non_utf8_lines_are_named(tmp_path):
    path = tmp_path / "ids.jsonl"
    path.write_text(json.dumps({"id": 7, "text": "Pháp viện trợ.", "country": "Pháp", "label": "pro_ukraine"}) + "\n",
                    encoding="utf-8")  # fmt: skip
    assert read_jsonl(path)[0]["id"] == "7"
    latin = tmp_path / "latin1.jsonl"
    latin.write_bytes(path.read_bytes() + b"\n" + json.dumps({"id": "b", "text": "caf\u00e9"}).encode().replace(
        b"\\u00e9", b"\xe9") + b"\n")  # fmt: skip
    with pytest.raises(DataError, match=r"latin1\.jsonl:3: not UTF-8 text"):
        read_jsonl(latin)


def test_damaged_json_names_the_file(tmp_path):
    (tmp_path / "run.json").write_text('{"status": "compl', encoding="utf-8")
    with pytest.raises(DataError, match=r"run\.json: damaged JSON file"):
        read_json(tmp_path / "run.json")
