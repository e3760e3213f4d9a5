"""Typed run configuration: YAML file + dotted command-line overrides → dataclasses, strictly checked."""

from __future__ import annotations

import dataclasses
import difflib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml

from .kinds import KINDS

log = logging.getLogger(__name__)

SEGMENTERS = ("pyvi", "underthesea", "none")
ENSEMBLE_OBJECTIVES = ("macro_f1", "log_loss")
CLASS_WEIGHTS = ("none", "balanced")
# PhoBERT's position table holds 258 rows, two of which RoBERTa reserves for padding offsets:
# 256 tokens is the real limit, and 258 crashes with an index error deep inside the embedding.
MAX_LENGTH_LIMIT = 256


class ConfigError(ValueError):
    """A config file or override that cannot be used; the message names the file and the key."""


@dataclass
class AugmentConfig:
    """Counterfactual training data (train/swap.py): each training example whose target is a third country is
    replaced, with this probability, by a copy naming another country (label kept). Deterministic per seed."""

    swap_targets: float = 0.0


@dataclass
class DataConfig:
    train: str = "data/stance/train.jsonl"
    dev: str = "data/stance/dev.jsonl"
    test: str = "data/stance/test.jsonl"
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ScratchConfig:
    """A RoBERTa (PhoBERT architecture) encoder built with random weights, plus a PhoBERT-format BPE
    tokenizer learned from the training sentences. Used when model.name_or_path is empty."""

    num_hidden_layers: int = 2
    hidden_size: int = 64
    num_attention_heads: int = 2
    intermediate_size: int = 256
    bpe_merges: int = 3000


@dataclass
class TfidfConfig:
    """The classical baseline (model.type: tfidf): n-gram ranges, feature cap per block, window around the
    target's mention, and the logistic regression's inverse regularisation C."""

    word_ngram_min: int = 1
    word_ngram_max: int = 2
    char_ngram_min: int = 2
    char_ngram_max: int = 5
    max_features: int = 50000
    window: int = 3
    C: float = 10.0
    max_iter: int = 2000


@dataclass
class EnsembleConfig:
    """model.type: ensemble: a weighted average of finished runs' class probabilities (any model types). The
    weights are chosen on the dev split (data.dev) over a grid on the simplex, by dev macro-F1 (ties: lower
    log-loss) or by log-loss alone."""

    members: list[str] = field(default_factory=list)  # run folders
    objective: str = "macro_f1"
    grid_step: float = 0.1


@dataclass
class ModelConfig:
    type: str = "transformer"
    # A hub id ("vinai/phobert-base"), a local save_pretrained folder, or "" to build from `scratch`.
    name_or_path: str = ""
    scratch: ScratchConfig = field(default_factory=ScratchConfig)
    tfidf: TfidfConfig = field(default_factory=TfidfConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    segmenter: str = "pyvi"
    max_length: int = 128
    # Wrap the target's mentions in the sentence in « » before the model reads it, so that in a sentence
    # naming several countries it sees which one the label is about (the TF-IDF baseline always marks).
    mark_target: bool = False
    # Replace a third country's mentions and its name by one placeholder (train.mentions.MASK), so the model
    # judges the act, not who did it; Nga and Ukraine keep their names (their label depends on who they are).
    mask_target: bool = False
    # Finds the target's mentions (Putin, Điện Kremlin → Nga) for marking; "" = the country's name only.
    # The run keeps a copy, so predictions do not change when the project's gazetteer does.
    gazetteer: str = "data/countries.yaml"
    dropout: float = 0.1
    # Keep the pretrained word embeddings fixed: fewer weights for AdamW to update each step (for e5-small,
    # 96M of 118M), and the rare pieces our few thousand sentences never show keep their pretrained values.
    freeze_embeddings: bool = False


@dataclass
class TrainingConfig:
    epochs: int = 3
    batch_size: int = 16
    eval_batch_size: int = 64
    learning_rate: float = 5.0e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    class_weights: str = "none"
    # Batches of similar length (shuffled in groups): with dynamic padding, random batches of news sentences
    # are about 40% padding, compute spent on nothing. False = plain random batches.
    group_by_length: bool = True
    seed: int = 42
    threads: int = 1


@dataclass
class Config:
    run_name: str = "run"
    output_dir: str = "models"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.run_name


@dataclass
class PretrainDataConfig:
    """Unlabeled text for `stance pretrain`: .txt (a line per sentence or paragraph, a blank line between
    documents), .jsonl (one document per record, in `text_field`), either one compressed as .xz, or folders
    of them (read recursively, in name order)."""

    inputs: list[str] = field(default_factory=list)
    text_field: str = "text"
    # The text is already word-segmented with underscores ("Bộ_trưởng Quốc_phòng", as ../shared/corpora is).
    # For a model that reads raw text (model.segmenter: none) the underscores become spaces again; for a
    # PhoBERT-style model (pyvi/underthesea) segmented text is used as is and raw text is segmented.
    segmented: bool = False
    max_examples: int = 0  # stop after this many non-blank lines over all inputs; 0 = read everything


@dataclass
class PretrainModelConfig:
    # A hub id, a local save_pretrained folder, "bundled:e5-small(-vi)", or "" to build from `scratch`
    # (with a tokenizer learned from the inputs).
    name_or_path: str = ""
    scratch: ScratchConfig = field(default_factory=ScratchConfig)
    segmenter: str = "none"  # the segmenter `stance train` will use with this backbone
    max_length: int = 128  # tokens per training block (consecutive lines of one document packed together)
    dropout: float = 0.1


@dataclass
class PretrainTrainingConfig:
    max_steps: int = 0  # 0 = train for `epochs` over the blocks
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 5.0e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    mlm_probability: float = 0.15
    save_steps: int = 200  # a checkpoint to resume from every this many steps
    seed: int = 42
    threads: int = 1


@dataclass
class PretrainConfig:
    """`stance pretrain`: continue masked-language-model training of an encoder on unlabeled text."""

    run_name: str = "pretrain"
    output_dir: str = "models"
    data: PretrainDataConfig = field(default_factory=PretrainDataConfig)
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    training: PretrainTrainingConfig = field(default_factory=PretrainTrainingConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.run_name


# Config keys holding a file or folder path; relative ones are resolved by `resolve_paths`.
PATH_KEYS = ("data.train", "data.dev", "data.test", "model.gazetteer", "model.name_or_path", "output_dir")
PATH_RULE = (
    "a relative path in a config is read from the current folder when it exists there, else from the "
    "config's project root (the nearest folder above the config holding pyproject.toml, else the config's folder)"
)


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML config (or the defaults when path is None) and apply `a.b=value` overrides."""
    cfg, source, root = _load(Config, path, overrides)
    _check(cfg, source)
    resolve_paths(cfg, root)
    return cfg


def _load(cls: type, path: str | Path | None, overrides: list[str] | tuple[str, ...]) -> tuple[Any, str, Path]:
    """The config dataclass `cls` from YAML and overrides, its source name, and the root of its relative paths."""
    raw: dict[str, Any] = {}
    source = str(path) if path is not None else "<defaults>"
    if path is not None:
        raw = _read_yaml(Path(path), source)
    _moved_keys(raw, source)
    cfg = _build(cls, raw, source, prefix="")
    for item in overrides:
        _apply_override(cfg, item)
    return cfg, source, project_root(Path(path)) if path is not None else Path.cwd()


def _read_yaml(path: Path, source: str) -> dict[str, Any]:
    if path.is_dir():
        raise ConfigError(f"{source}: is a folder, not a config file (e.g. configs/tiny.yaml)")
    try:
        data = path.read_bytes()
        raw = yaml.safe_load(data.decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{source}: config file not found") from None
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ConfigError(f"{source}:{line}: not UTF-8 text (save the config as UTF-8)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {err}") from None
    # An empty file would train silently on every default: almost always a wrong or unsaved file.
    if raw is None or raw == {}:
        raise ConfigError(f"{source}: the config is empty; set at least run_name (configs/tiny.yaml is an example)")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys to values")
    return raw


def project_root(config_path: Path) -> Path:
    """The nearest folder at or above the config's folder that holds pyproject.toml, else the config's folder."""
    folder = config_path.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / "pyproject.toml").is_file():
            return candidate
    return folder


def resolve_paths(cfg: Any, root: Path, keys: tuple[str, ...] = PATH_KEYS) -> None:
    """Apply PATH_RULE to every path key: a relative path that does not exist in the current folder becomes
    the absolute path under `root`, so a config works from any folder (a hub id matches no folder and stays)."""
    for key in keys:
        section, _, name = key.rpartition(".")
        owner = getattr(cfg, section) if section else cfg
        value = getattr(owner, name)
        if not value or Path(value).is_absolute() or Path(value).exists():
            continue
        under_root = root / value
        if key == "model.name_or_path" and not under_root.exists():
            continue  # a hub id such as vinai/phobert-base
        setattr(owner, name, str(under_root))


def _moved_keys(raw: dict[str, Any], source: str) -> None:
    """Read configs written before a key moved (run folders keep their config.yaml): model.tfidf.gazetteer,
    now model.gazetteer, shared by the TF-IDF baseline and target marking."""
    model = raw.get("model")
    tfidf = model.get("tfidf") if isinstance(model, dict) else None
    if isinstance(tfidf, dict) and "gazetteer" in tfidf:
        log.warning("%s: 'model.tfidf.gazetteer' is now 'model.gazetteer'; reading it as that", source)
        model.setdefault("gazetteer", tfidf.pop("gazetteer"))


def config_to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def dump_config(cfg: Config) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)


def _build(cls: type, raw: dict[str, Any], source: str, prefix: str) -> Any:
    hints = get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    values = {}
    for key, value in raw.items():
        full = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"{source}: unknown key '{full}'{_suggest(key, names, prefix)}")
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: key '{full}' must be a mapping, got {value!r}")
            values[key] = _build(kind, value, source, prefix=f"{full}.")
        else:
            values[key] = _cast(value, kind, source, full)
    return cls(**values)


def _cast(value: Any, kind: type, source: str, key: str) -> Any:
    """Cast a YAML or command-line value to the field's type; PyYAML reads `3e-5` as a string, so
    numeric strings are accepted for numeric fields."""
    bad = ConfigError(f"{source}: key '{key}' expects {kind.__name__}, got {value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad
    if kind is int:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise bad from None
        raise bad
    if kind is float:
        if isinstance(value, bool):
            raise bad
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise bad from None
        raise bad
    if kind == list[str]:  # a YAML list, or "a,b" on the command line
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return value
        raise ConfigError(f"{source}: key '{key}' expects a list of strings, got {value!r}")
    if kind is str:
        if value is None:
            return ""
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    raise bad


def _apply_override(cfg: Config, item: str) -> None:
    source = "command line"
    if "=" not in item:
        raise ConfigError(f"{source}: override '{item}' must look like key=value (e.g. training.epochs=2)")
    dotted, text = item.split("=", 1)
    parts = dotted.strip().split(".")
    target: Any = cfg
    for depth, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(target)]
        prefix = ".".join(parts[:depth]) + ("." if depth else "")
        if part not in names:
            raise ConfigError(f"{source}: unknown key '{dotted}'{_suggest(part, names, prefix)}")
        kind = get_type_hints(type(target))[part]
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(kind):
                raise ConfigError(f"{source}: key '{dotted}' is a section; set one of its keys instead")
            setattr(target, part, _cast(yaml.safe_load(text) if text else "", kind, source, dotted))
        elif not dataclasses.is_dataclass(kind):
            raise ConfigError(f"{source}: key '{prefix}{part}' is not a section")
        else:
            target = getattr(target, part)


def _suggest(key: str, names: list[str], prefix: str) -> str:
    close = difflib.get_close_matches(key, names, n=1)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else f" (valid keys: {', '.join(names)})"


def _check(cfg: Config, source: str) -> None:
    def choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            raise ConfigError(f"{source}: key '{key}' must be one of {', '.join(allowed)}; got {value!r}")

    def positive(key: str, value: float) -> None:
        if not (value > 0 and math.isfinite(value)):  # `not >` also catches NaN, which compares false
            raise ConfigError(f"{source}: key '{key}' must be > 0 and finite; got {value!r}")

    if not cfg.run_name or "/" in cfg.run_name or cfg.run_name in (".", ".."):
        raise ConfigError(f"{source}: key 'run_name' must be a plain folder name; got {cfg.run_name!r}")
    choice("model.type", cfg.model.type, tuple(KINDS))
    choice("model.segmenter", cfg.model.segmenter, SEGMENTERS)
    choice("training.class_weights", cfg.training.class_weights, CLASS_WEIGHTS)
    for key in ("epochs", "batch_size", "eval_batch_size", "learning_rate", "threads"):
        positive(f"training.{key}", getattr(cfg.training, key))
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "bpe_merges"):
        positive(f"model.scratch.{key}", getattr(cfg.model.scratch, key))
    for key in ("word_ngram_min", "char_ngram_min", "max_features", "window", "C", "max_iter"):
        positive(f"model.tfidf.{key}", getattr(cfg.model.tfidf, key))
    for block in ("word", "char"):
        low, high = getattr(cfg.model.tfidf, f"{block}_ngram_min"), getattr(cfg.model.tfidf, f"{block}_ngram_max")
        if high < low:
            raise ConfigError(
                f"{source}: key 'model.tfidf.{block}_ngram_max' ({high}) must be >= '{block}_ngram_min' ({low})"
            )
    if cfg.model.scratch.hidden_size % cfg.model.scratch.num_attention_heads:
        raise ConfigError(
            f"{source}: key 'model.scratch.hidden_size' ({cfg.model.scratch.hidden_size}) must be a multiple "
            f"of 'model.scratch.num_attention_heads' ({cfg.model.scratch.num_attention_heads})"
        )
    if cfg.model.type == "ensemble":
        ensemble = cfg.model.ensemble
        if len(ensemble.members) < 2:
            raise ConfigError(f"{source}: key 'model.ensemble.members' must list at least two run folders; "
                              f"got {ensemble.members!r}")  # fmt: skip
        choice("model.ensemble.objective", ensemble.objective, ENSEMBLE_OBJECTIVES)
        steps = 1 / ensemble.grid_step if ensemble.grid_step > 0 else 0
        if not (steps >= 1 and abs(steps - round(steps)) < 1e-9):
            raise ConfigError(f"{source}: key 'model.ensemble.grid_step' must be 1/n for a whole n (0.1, 0.05, "
                              f"0.25); got {ensemble.grid_step!r}")  # fmt: skip
    if not 8 <= cfg.model.max_length:
        raise ConfigError(f"{source}: key 'model.max_length' must be at least 8; got {cfg.model.max_length}")
    # Clamped rather than refused: a hub config written for another model family may ask for 512.
    if cfg.model.max_length > MAX_LENGTH_LIMIT:
        log.warning("%s: model.max_length %d clamped to %d", source, cfg.model.max_length, MAX_LENGTH_LIMIT)
        cfg.model.max_length = MAX_LENGTH_LIMIT
    if not 0 <= cfg.training.weight_decay < math.inf:
        raise ConfigError(
            f"{source}: key 'training.weight_decay' must be >= 0 and finite; got {cfg.training.weight_decay}"
        )
    if not 0 <= cfg.training.warmup_ratio < 1:
        raise ConfigError(f"{source}: key 'training.warmup_ratio' must be in [0, 1); got {cfg.training.warmup_ratio}")
    if not 0 <= cfg.data.augment.swap_targets <= 1:
        raise ConfigError(
            f"{source}: key 'data.augment.swap_targets' must be a probability in [0, 1]; got {cfg.data.augment.swap_targets}"
        )
    if cfg.data.augment.swap_targets > 0 and not cfg.model.gazetteer:
        raise ConfigError(f"{source}: key 'data.augment.swap_targets' needs 'model.gazetteer' (it finds what to swap)")
    if not 0 <= cfg.model.dropout < 1:
        raise ConfigError(f"{source}: key 'model.dropout' must be in [0, 1); got {cfg.model.dropout}")


def load_pretrain_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> PretrainConfig:
    """Like load_config, for `stance pretrain`'s PretrainConfig (same strictness, overrides and PATH_RULE)."""
    cfg, source, root = _load(PretrainConfig, path, overrides)
    _check_pretrain(cfg, source)
    resolve_paths(cfg, root, keys=("model.name_or_path", "output_dir"))
    cfg.data.inputs = [
        value if Path(value).is_absolute() or Path(value).exists() else str(root / value) for value in cfg.data.inputs
    ]
    return cfg


def _check_pretrain(cfg: PretrainConfig, source: str) -> None:
    def positive(key: str, value: float) -> None:
        if not (value > 0 and math.isfinite(value)):
            raise ConfigError(f"{source}: key '{key}' must be > 0 and finite; got {value!r}")

    if not cfg.run_name or "/" in cfg.run_name or cfg.run_name in (".", ".."):
        raise ConfigError(f"{source}: key 'run_name' must be a plain folder name; got {cfg.run_name!r}")
    if not cfg.data.inputs:
        raise ConfigError(f"{source}: key 'data.inputs' must list at least one .txt/.jsonl/.xz file or folder")
    if cfg.model.segmenter not in SEGMENTERS:
        raise ConfigError(f"{source}: key 'model.segmenter' must be one of {', '.join(SEGMENTERS)}; "
                          f"got {cfg.model.segmenter!r}")  # fmt: skip
    for key in ("epochs", "batch_size", "learning_rate", "save_steps", "threads"):
        positive(f"training.{key}", getattr(cfg.training, key))
    for key in ("num_hidden_layers", "hidden_size", "num_attention_heads", "intermediate_size", "bpe_merges"):
        positive(f"model.scratch.{key}", getattr(cfg.model.scratch, key))
    for key in ("max_steps", "max_examples"):
        section = cfg.training if key == "max_steps" else cfg.data
        if getattr(section, key) < 0:
            raise ConfigError(f"{source}: key '{'training' if key == 'max_steps' else 'data'}.{key}' must be >= 0 "
                              f"(0: no limit); got {getattr(section, key)}")  # fmt: skip
    if not 0 < cfg.training.mlm_probability < 1:
        raise ConfigError(f"{source}: key 'training.mlm_probability' must be in (0, 1); "
                          f"got {cfg.training.mlm_probability}")  # fmt: skip
    if not 0 <= cfg.training.warmup_ratio < 1:
        raise ConfigError(f"{source}: key 'training.warmup_ratio' must be in [0, 1); got {cfg.training.warmup_ratio}")
    if not 0 <= cfg.model.dropout < 1:
        raise ConfigError(f"{source}: key 'model.dropout' must be in [0, 1); got {cfg.model.dropout}")
    if not 8 <= cfg.model.max_length <= MAX_LENGTH_LIMIT:
        raise ConfigError(f"{source}: key 'model.max_length' must be in [8, {MAX_LENGTH_LIMIT}]; "
                          f"got {cfg.model.max_length}")  # fmt: skip
