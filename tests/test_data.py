import json

import pytest

from train.data import LABELS, DataError, load_splits, read_jsonl, sha256_file

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
