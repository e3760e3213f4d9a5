"""`stance predict` loses nothing: unique ids, a locked output folder, checked resumes, never a user's files."""

import csv
import json
import os
import re
import subprocess
import sys
import time

import pytest

from .conftest import FIXTURES, REPO

MINI_GAZ = FIXTURES / "countries_mini.yaml"


def rows(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def predict_cli(run, *args, stdin=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "train.cli", "predict", str(run), *args, "--gazetteer", str(MINI_GAZ)]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, input=stdin)


def test_same_names_reused_ids_and_duplicates_are_all_kept_or_reported(tiny_run, tmp_path):
    first, second = tmp_path / "in1", tmp_path / "in2"
    for folder, country in ((first, "Đức"), (second, "Pháp")):
        (folder / "sub").mkdir(parents=True)
        (folder / "a.txt").write_text(f"{country} viện trợ Ukraine.", encoding="utf-8")
        (folder / "sub" / "b.txt").write_text(f"{country} phản đối Nga.", encoding="utf-8")
    table = tmp_path / "rows.jsonl"
    table.write_text("".join(json.dumps({"id": "r1", "text": text}, ensure_ascii=False) + "\n"
                             for text in ("Mỹ viện trợ Kiev.", "Anh viện trợ Kiev.", "Mỹ viện trợ Kiev.")),
                     encoding="utf-8")  # fmt: skip
    latin1 = tmp_path / "latin1"
    latin1.mkdir()
    (latin1 / "t.csv").write_bytes("id,text\nc1,Nga phản đối\nc2,Pháp café\n".encode().replace(b"\xc3\xa9", b"\xe9"))
    (latin1 / "t.jsonl").write_bytes(b'{"id": "j1", "text": "Ph\xe1p"}\n')
    out = tmp_path / "out"
    # in1/a.txt twice (through its folder and by name) is a true duplicate; everything else is a document.
    done = predict_cli(tiny_run, "--input", str(first), str(second), str(table), str(first / "a.txt"),
                       str(latin1), "--output", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    ledger = rows(out / "documents.jsonl")
    ok = {row["article"]: row["source"] for row in ledger if row["status"] == "ok"}
    assert len(ok) == 6, ledger  # 2 + 2 files, rows 1 and 2 (row 3 repeats row 1)
    assert {"a.txt", "sub/b.txt", str(second / "a.txt"), str(second / "sub" / "b.txt")} <= set(ok)
    assert {"rows.jsonl#r1", f"{table}:2"} <= set(ok)
    verdicts = {(row["article"], row["country"]) for row in rows(out / "articles.jsonl")}
    assert {("a.txt", "Đức"), (str(second / "a.txt"), "Pháp"), (f"{table}:2", "Anh")} <= verdicts
    skipped = {row["source"]: row for row in rows(out / "skipped.jsonl")}
    assert skipped[str(first / "a.txt")]["status"] == "skipped"
    assert skipped[str(first / "a.txt")]["reason"].startswith(f"duplicate of {first / 'a.txt'}")
    assert skipped[f"{table}:3"]["reason"].startswith(f"duplicate of {table}:1")
    assert skipped[str(second / "a.txt")]["status"] == "warning"  # renamed, and said so
    assert "duplicate of" in done.stderr
    warnings = [line.split("\r")[-1] for line in done.stderr.split("\n") if "WARNING" in line]
    assert warnings and all(re.match(r"\d\d:\d\d:\d\d WARNING", line) for line in warnings)  # not inside the bar
    # A table in another encoding is skipped whole, with where it went wrong, not read with replacement characters.
    assert skipped[str(latin1 / "t.csv")]["reason"].startswith("not UTF-8 (bad byte on line 3, byte 13)")
    assert skipped[str(latin1 / "t.jsonl")]["reason"].startswith("not UTF-8 (bad byte on line 1")
    assert json.loads(done.stdout) | {"ok": 6, "skipped": 4} == json.loads(done.stdout)

    # Resume with the inputs in another order: the same ids, nothing done twice, nothing lost.
    again = predict_cli(tiny_run, "--input", str(table), str(second), str(first), "--output", str(out), "--resume")
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads(again.stdout)["already_done"] == 7 and json.loads(again.stdout)["ok"] == 0
    # Piped text is named by its bytes: a second, different page resumed into the folder is a new document.
    piped = predict_cli(tiny_run, "--input", "-", "--output", str(out), "--resume", stdin="Italy viện trợ Ukraine.")
    assert json.loads(piped.stdout)["ok"] == 1
    ids = [row["article"] for row in rows(out / "documents.jsonl") if row["source"] == "stdin"]
    assert len(ids) == 1 and ids[0].startswith("stdin")


def test_a_second_run_into_the_same_folder_fails_at_once(tiny_run, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "train.cli", "predict", str(tiny_run), "--input", "-", "--output", str(out),
               "--gazetteer", str(MINI_GAZ)]  # fmt: skip
    # The first run holds the folder while it waits for stdin.
    first = subprocess.Popen(command, cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "predict.json").exists() and first.poll() is None:
        time.sleep(0.1)
    other = tmp_path / "other.txt"
    other.write_text("Pháp viện trợ Ukraine.", encoding="utf-8")
    second = predict_cli(tiny_run, "--input", str(other), "--output", str(out), "--resume")
    stdout, stderr = first.communicate("Đức viện trợ Ukraine.", timeout=120)
    assert second.returncode == 2 and "another stance predict" in second.stderr, second.stderr[-2000:]
    assert "Traceback" not in second.stderr and not second.stdout
    assert first.returncode == 0, stderr[-3000:]
    assert [row["source"] for row in rows(out / "documents.jsonl")] == ["stdin"]  # nothing of the second run


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory):
    from train.config import load_config
    from train.fit import fit

    from .conftest import mini_overrides

    overrides = mini_overrides(tmp_path_factory.mktemp("runs"), run_name="tf")
    return fit(load_config(REPO / "configs" / "tfidf.yaml", overrides))


def test_resume_refuses_another_model(tiny_run, tfidf_run, tmp_path):
    tfidf = tfidf_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    for number in range(70):  # about 700 pairs: more than one step's worth
        (inputs / f"{number:02d}.txt").write_text("\n".join(f"Đức viện trợ Ukraine lần {k}." for k in range(5)),
                                                  encoding="utf-8")  # fmt: skip
    out = tmp_path / "out"
    done = predict_cli(tfidf, "--input", str(inputs), "--output", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert "featurizing" not in done.stderr and "predicting" in done.stderr  # one bar, not one per batch
    before = {path.name: path.read_bytes() for path in out.iterdir() if path.name != ".lock"}
    refused = predict_cli(tiny_run, "--input", str(inputs), "--output", str(out), "--resume")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "--resume refused" in refused.stderr and f"run {tfidf.resolve()}" in refused.stderr, refused.stderr[-2000:]
    assert f"run {tiny_run.resolve()}" in refused.stderr
    assert before == {path.name: path.read_bytes() for path in out.iterdir() if path.name != ".lock"}
    other_field = predict_cli(tfidf, "--input", str(inputs), "--output", str(out), "--resume", "--text-field", "body")
    assert other_field.returncode == 2 and "text_field ('text' then, 'body' now)" in other_field.stderr


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_never_writes_into_a_folder_it_did_not_make(tiny_run, tmp_path, force):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("articles.csv", "summary.md", "sentences.jsonl"):
        (mine / name).write_text(f"my own {name}\n", encoding="utf-8")
    page = tmp_path / "page.txt"
    page.write_text("Đức viện trợ Ukraine.", encoding="utf-8")
    done = predict_cli(tiny_run, "--input", str(page), "--output", str(mine), *(["--force"] if force else []))
    assert done.returncode == 2 and "not made by stance predict" in done.stderr, done.stderr[-2000:]
    assert sorted(path.name for path in mine.iterdir()) == ["articles.csv", "sentences.jsonl", "summary.md"]
    assert (mine / "summary.md").read_text(encoding="utf-8") == "my own summary.md\n"


def test_bad_arguments_fail_at_once_with_one_line(tmp_path, capsys):
    from train.cli import main

    out = tmp_path / "out"
    assert main(["predict", str(tmp_path), "--input", str(tmp_path / "nope.txt"), "--output", str(out)]) == 2
    assert f"no such file or folder: {tmp_path / 'nope.txt'}" in capsys.readouterr().err
    assert main(["predict", str(tmp_path), "--input", "-", "-", "--output", str(out)]) == 2
    assert "only once" in capsys.readouterr().err
    assert not out.exists()
    for option, value in (("--batch-size", "0"), ("--batch-size", "-3"), ("--top-k", "0")):
        with pytest.raises(SystemExit) as stop:
            main(["predict", str(tmp_path), "--input", "-", "--output", str(out), option, value])
        assert stop.value.code == 2 and f"argument {option}: must be at least 1" in capsys.readouterr().err


def test_csv_cells_never_run_as_formulas_and_unaccented_text_is_flagged(tmp_path):
    from train.batch import iter_documents, predict_documents
    from train.mentions import load_gazetteer

    from .test_batch_predict import KeywordPredictor

    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "=HYPERLINK(1).txt").write_text("Đức viện trợ Ukraine.", encoding="utf-8")
    (inputs / "-x.txt").write_text("- Pháp viện trợ Ukraine.", encoding="utf-8")
    (inputs / "khong dau.txt").write_text("Hoa Ky va Phap vien tro them cho Ukraine trong cuoc chien voi Nga.",
                                          encoding="utf-8")  # fmt: skip
    (inputs / "khong dau 2.txt").write_text("Hoa Ky va Phap vien tro them.", encoding="utf-8")
    gaz = load_gazetteer(MINI_GAZ)
    out = tmp_path / "out"
    predict_documents(KeywordPredictor(), iter_documents([str(inputs)]), gaz, out, progress=False)
    with (out / "articles.csv").open(encoding="utf-8", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert {"'=HYPERLINK(1).txt", "'-x.txt"} <= {row["article"] for row in table}
    assert [row["evidence"] for row in table if row["article"] == "'-x.txt"][0].startswith("'- Pháp")
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in table for cell in row.values())
    # The escaped ids survive a resume's repair of the CSV.
    predict_documents(KeywordPredictor(), iter_documents([str(inputs)]), gaz, out, resume=True, progress=False)
    with (out / "articles.csv").open(encoding="utf-8", newline="") as handle:
        assert list(csv.DictReader(handle)) == table

    skipped = {row["article"]: row for row in rows(out / "skipped.jsonl")}
    assert skipped["khong dau.txt"]["status"] == "warning"  # Nga/Ukraine found, the rest missed: used, and said so
    assert "almost no Vietnamese diacritics" in skipped["khong dau.txt"]["reason"]
    assert skipped["khong dau 2.txt"]["status"] == "skipped"
    assert "almost no Vietnamese diacritics" in skipped["khong dau 2.txt"]["reason"]
    assert not any(name in skipped for name in ("=HYPERLINK(1).txt", "-x.txt"))  # accented text is not flagged


def test_a_damaged_run_folder_is_one_line_naming_the_file(tiny_run, tfidf_run, tmp_path, capsys):
    import shutil

    import numpy as np

    from train.cli import main
    from train.predict import load_predictor

    def damaged(run, remove=(), add=None):
        copy = tmp_path / f"{run.name}-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(run, copy)
        for name in remove:
            (copy / name).unlink() if (copy / name).is_file() else shutil.rmtree(copy / name)
        if add:
            add(copy)
        return copy

    def pickled(run):
        (run / "model" / "pytorch_model.bin").write_bytes(b"x")

    cases = [
        (damaged(tiny_run, ["model/model.safetensors"]), "model/model.safetensors: missing"),
        (damaged(tiny_run, ["model/config.json"]), "model/config.json: missing"),
        (damaged(tiny_run, ["model/vocab.txt"]), "model/vocab.txt: missing"),
        (damaged(tiny_run, ["model/bpe.codes"]), "model/bpe.codes: missing"),
        (damaged(tiny_run, ["model"]), "model: missing, though run.json says training finished"),
        (damaged(tiny_run, ["model/model.safetensors"], pickled), "model/pytorch_model.bin: pickle weights are"),
        (damaged(tfidf_run, ["model/weights.npz"]), "model/weights.npz: missing"),
        (damaged(tfidf_run, ["model/weights.npz"], lambda run: np.savez(run / "model" / "weights.npz",
                                                                       coef=np.array([{"a": 1}], dtype=object))),
         "model/weights.npz: cannot load"),
    ]  # fmt: skip
    for run, message in cases:
        with pytest.raises((ValueError, FileNotFoundError), match="^" + str(run / message).replace(".", r"\.")):
            load_predictor(run)
    run, message = cases[0]
    capsys.readouterr()
    assert main(["predict", str(run), "--country", "Nga", "--text", "Nga phản đối trừng phạt."]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"stance predict: error: {run / message}; the run's model folder is incomplete"


def test_pair_mode_with_an_unmentioned_country_says_so_and_answers_none(tiny_run, capsys):
    from train.cli import main

    args = ["predict", str(tiny_run), "--gazetteer", str(MINI_GAZ), "--text", "Ông Putin phản đối trừng phạt."]
    assert main([*args, "--country", "Nga"]) == 0  # Putin is Nga in the gazetteer: a real answer
    answered = capsys.readouterr()
    assert set(json.loads(answered.out)["probs"]) == {"pro_ukraine", "pro_russia", "neutral", "none"}
    assert "warning" not in answered.err
    assert main([*args, "--country", "Pháp"]) == 0
    unmentioned = capsys.readouterr()
    result = json.loads(unmentioned.out)
    assert result["label"] == "none" and result["probs"] is None
    assert "warning: 'Pháp' is not mentioned in the text" in unmentioned.err
