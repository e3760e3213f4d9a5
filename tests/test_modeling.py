import json
import time

import pytest
import torch
from transformers import AutoTokenizer, PhobertTokenizer, RobertaConfig, RobertaForSequenceClassification

from train.config import load_config
from train.data import LABELS
from train.modeling import ModelSourceError, learn_phobert_tokenizer, load_pretrained, resolve_source

from .conftest import SHARED

PHOBERT = SHARED / "phobert-tokenizer"
needs_phobert = pytest.mark.skipif(not (PHOBERT / "vocab.txt").is_file(), reason="../shared/phobert-tokenizer absent")
SEGMENTED = "Bộ_trưởng Quốc_phòng Pháp tuyên_bố tiếp_tục hỗ_trợ Ukraine ."


def _phobert():
    return PhobertTokenizer(vocab_file=str(PHOBERT / "vocab.txt"), merges_file=str(PHOBERT / "bpe.codes"))


@needs_phobert
def test_real_phobert_tokenizer_ids_follow_its_vocab_file():
    tokenizer = _phobert()
    assert len(tokenizer) == 64001
    # fairseq dict order: <s>=0 <pad>=1 </s>=2 <unk>=3, then vocab.txt line k has id k + 4
    lines = [line.rsplit(" ", 1)[0] for line in (PHOBERT / "vocab.txt").read_text(encoding="utf-8").splitlines()]
    words = SEGMENTED.split()
    expected = [0, lines.index("Pháp") + 4, 2, 2] + [lines.index(w) + 4 for w in words] + [2]
    assert tokenizer("Pháp", SEGMENTED)["input_ids"] == expected


def test_learned_tokenizer_is_phobert_format_and_round_trips(tmp_path):
    texts = ["Bộ_trưởng Quốc_phòng Pháp tuyên_bố hỗ_trợ Ukraine .", "Nga phản_đối lệnh trừng_phạt ."] * 20
    tokenizer = learn_phobert_tokenizer(texts, 200, tmp_path)
    codes = (tmp_path / "bpe.codes").read_text(encoding="utf-8").splitlines()
    assert codes and all(len(line.split()) == 3 for line in codes)
    assert any("</w>" in line for line in codes)
    assert any(line.split()[0].endswith("@@") for line in (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines())
    # frequent words become single pieces; everything decodes back to the text
    assert "Quốc_phòng" in tokenizer.tokenize(texts[0])
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert type(reloaded).__name__ == "PhobertTokenizer"
    ids = reloaded("Pháp", texts[0])["input_ids"]
    assert ids == tokenizer("Pháp", texts[0])["input_ids"]
    assert reloaded.decode(ids, skip_special_tokens=True).replace(" ", "") == ("Pháp" + texts[0]).replace(" ", "")


@pytest.fixture
def tiny_phobert_folder(tmp_path):
    """What a user's downloaded vinai/phobert-base folder looks like, with tiny random weights."""
    tokenizer = _phobert()
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=258, pad_token_id=1, type_vocab_size=1,
                           tokenizer_class="PhobertTokenizer")  # fmt: skip
    folder = tmp_path / "phobert-tiny"
    RobertaForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@needs_phobert
def test_phobert_base_config_trains_from_a_local_folder(tiny_phobert_folder, tmp_path):
    from train.fit import fit

    from .conftest import REPO, mini_overrides

    overrides = mini_overrides(tmp_path / "runs", run_name="pb", epochs=1) + [f"model.name_or_path={tiny_phobert_folder}"]
    cfg = load_config(REPO / "configs" / "phobert-base.yaml", overrides)
    assert cfg.model.max_length == 256 and cfg.training.batch_size == 8
    run = fit(cfg)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert info["segmenter"]["name"] == "underthesea" and info["max_length"] == 256
    assert (run / "model" / "bpe.codes").is_file() and (run / "model" / "vocab.txt").is_file()


@needs_phobert
def test_local_folder_with_real_phobert_tokenizer_loads(tiny_phobert_folder):
    tmp_path = tiny_phobert_folder
    cfg = load_config(None, [f"model.name_or_path={tmp_path}", "model.max_length=256"])
    assert resolve_source(cfg.model.name_or_path) == str(tmp_path)
    tok, model = load_pretrained(str(tmp_path), cfg.model, LABELS)
    assert model.config.id2label[1] == "pro_russia" and model.num_labels == 4
    batch = tok(["Pháp"], [SEGMENTED], return_tensors="pt", truncation="only_second", max_length=256)
    assert model(**batch).logits.shape == (1, 4)
    # the longest input PhoBERT accepts (256 tokens) runs; this is why max_length is clamped to 256
    long = tok(["Pháp"], [" ".join(["Ukraine"] * 400)], return_tensors="pt", truncation="only_second", max_length=256)
    assert long["input_ids"].shape[1] == 256
    with torch.inference_mode():
        model(**long)


def test_hub_id_offline_fails_fast_with_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.time()
    with pytest.raises(ModelSourceError, match="vinai/phobert-base.*HF_HUB_OFFLINE"):
        resolve_source("vinai/phobert-base")
    assert time.time() - started < 10


def test_missing_local_folder_is_named():
    with pytest.raises(ModelSourceError, match="folder './no/such/model' does not exist"):
        resolve_source("./no/such/model")
