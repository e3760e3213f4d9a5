"""The classical baseline: target-aware TF-IDF word and character n-grams + logistic regression, saved without pickle.

The target country's name in the sentence is replaced by the token TARGET before the n-grams are taken, so
"TARGET viện_trợ cho Ukraine" means the same thing whichever country gives the aid; a third feature block
holds the country's identity, the words within `window` of the mention, and the two crossed (the belligerents'
own statements follow other rules than everyone else's). The fitted vocabularies, idf weights and
coefficients are stored as JSON + npz: loading a pickle from a run folder would run whatever code it holds.
"""

from __future__ import annotations

import json
import logging
import platform
import re
import sys
import time
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize
from tqdm.auto import tqdm

from .config import Config, TfidfConfig
from .data import LABELS, read_jsonl, sha256_file
from .metrics import macro_f1
from .mentions import BELLIGERENTS, GAZETTEER_FILE, MASK, copy_gazetteer, load_gazetteer, target_spans
from .runinfo import package_versions
from .segment import Segmenter, get_segmenter
from .swap import swap_augmenter

log = logging.getLogger(__name__)

MULTI_PROCESS = False  # the kind interface (train/kinds.py): under torchrun, rank 0 alone fits
PLACEHOLDER = "TARGET"
FORMAT_VERSION = 1
PARAMS_FILE, WEIGHTS_FILE = "params.json", "weights.npz"


def load(run_dir: Path, info: dict, *, batch_size: int = 64, device: str = "cpu", precision: str = "auto",
         backend: str = "torch") -> "TfidfPredictor":  # fmt: skip
    """The finished run's predictor (the kind interface, train/kinds.py); it runs on the CPU, whatever `device`."""
    if backend != "torch":
        raise ValueError(f"{run_dir}: a tfidf run has no ONNX export; use --backend torch")
    return TfidfPredictor.from_run(run_dir, info)


def replace_target(text: str, country: str, gazetteer=None) -> tuple[str, bool]:
    """Replace every mention of the country by TARGET; report whether there was one.

    With a gazetteer, a mention is any of its forms (Putin, Điện Kremlin, Tổng thống Pháp Emmanuel Macron);
    without one, or when it finds none, the country's own name as a whole word. Case matters: "pháp luật" is
    not France, and "anh" is not Britain.
    """
    spans = target_spans(text, country, gazetteer)
    for start, end in reversed(spans):
        text = text[:start] + PLACEHOLDER + text[end:]
    return text, bool(spans)


def target_features(words: list[str], country: str, window: int) -> str:
    """Whitespace-joined features of the target: its identity, the words near its mentions, and the two crossed."""
    me = "c=" + country.lower().replace(" ", "_")
    features = [me]
    for position, word in enumerate(words):
        if word != PLACEHOLDER:
            continue
        for offset in range(-window, window + 1):
            near = position + offset
            if offset == 0 or not 0 <= near < len(words) or words[near] == PLACEHOLDER:
                continue
            side = "L" if offset < 0 else "R"
            word_near = words[near].lower()
            features += [f"{side}={word_near}", f"{me}|{side}={word_near}"]
            if abs(offset) == 1:  # the verb right after the subject carries most of the stance
                features.append(f"{side}1={word_near}")
    return " ".join(features)


@dataclass
class Featurizer:
    """Turns (country, sentence) pairs into the three texts the three vectorizers read."""

    segmenter: Segmenter
    window: int
    gazetteer: object = None  # train.mentions.Gazetteer, or None to find the target by its name alone
    mask_target: bool = False  # model.mask_target: a third country's identity features read as MASK

    def __call__(self, pairs: list[tuple[str, str]], desc: str = "featurizing") -> dict[str, list[str]]:
        texts = {"word": [], "char": [], "target": []}
        for country, text in tqdm(pairs, desc=desc, disable=len(pairs) < 500 or not desc):
            # The gazetteer's forms are NFC; text pasted from the web may be decomposed.
            text, country = unicodedata.normalize("NFC", text), unicodedata.normalize("NFC", country)
            marked, _ = replace_target(text, country, self.gazetteer)
            if self.mask_target and country not in BELLIGERENTS:
                country = MASK
            segmented = self.segmenter(marked)
            # A segmenter may glue the placeholder to a neighbour ("TARGET_tăng"); keep it a word of its own.
            segmented = re.sub(rf"_?{PLACEHOLDER}_?", f" {PLACEHOLDER} ", segmented).strip()
            segmented = re.sub(r" {2,}", " ", segmented)
            texts["word"].append(segmented)
            texts["char"].append(marked)
            texts["target"].append(target_features(segmented.split(), country, self.window))
        return texts


def vectorizer_specs(tc: TfidfConfig) -> dict[str, dict]:
    """The CountVectorizer arguments of each block; stored in params.json and reused verbatim at load time."""
    return {
        "word": {"analyzer": "word", "token_pattern": r"\S+", "lowercase": True,
                 "ngram_range": [tc.word_ngram_min, tc.word_ngram_max]},
        "char": {"analyzer": "char_wb", "lowercase": True, "ngram_range": [tc.char_ngram_min, tc.char_ngram_max]},
        "target": {"analyzer": "word", "token_pattern": r"\S+", "lowercase": False, "ngram_range": [1, 1]},
    }  # fmt: skip


def transform(texts: dict[str, list[str]], blocks: dict[str, dict]) -> sp.csr_matrix:
    """TF-IDF exactly as sklearn's TfidfVectorizer(sublinear_tf=True) computes it, from stored arrays only."""
    parts = []
    for name, block in blocks.items():
        spec = {**block["spec"], "ngram_range": tuple(block["spec"]["ngram_range"])}
        counts = CountVectorizer(**spec, vocabulary=block["vocabulary"]).transform(texts[name]).astype(np.float64)
        counts.data = np.log(counts.data) + 1.0  # sublinear tf
        parts.append(normalize(counts @ sp.diags(block["idf"]), norm="l2"))
    return sp.hstack(parts, format="csr")


def probabilities(features: sp.csr_matrix, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """LogisticRegression.predict_proba from its coefficients: softmax, or a sigmoid when it saw two classes."""
    scores = np.asarray(features @ coef.T) + intercept
    if coef.shape[0] == 1:
        positive = 1.0 / (1.0 + np.exp(-scores[:, 0]))
        return np.stack([1.0 - positive, positive], axis=1)
    scores -= scores.max(axis=1, keepdims=True)
    exp = np.exp(scores)
    return exp / exp.sum(axis=1, keepdims=True)


def train_model(
    rows: list[dict], cfg: Config, segmenter: Segmenter, gazetteer=None
) -> tuple[dict, dict, LogisticRegression]:
    """Fit on training rows → (params for JSON, arrays for npz, the fitted sklearn classifier for checks)."""
    tc = cfg.model.tfidf
    featurizer = Featurizer(segmenter, tc.window, gazetteer, cfg.model.mask_target)
    texts = featurizer([(row["country"], row["text"]) for row in rows], desc="featurizing train")
    specs = vectorizer_specs(tc)
    blocks, matrices = {}, []
    for name, spec in specs.items():
        vectorizer = TfidfVectorizer(**{**spec, "ngram_range": tuple(spec["ngram_range"])}, sublinear_tf=True,
                                     max_features=tc.max_features)  # fmt: skip
        matrices.append(vectorizer.fit_transform(texts[name]))
        vocabulary = {term: int(index) for term, index in vectorizer.vocabulary_.items()}
        blocks[name] = {"spec": spec, "vocabulary": vocabulary, "idf": vectorizer.idf_}
    gold = np.array([LABELS.index(row["label"]) for row in rows])
    classifier = LogisticRegression(
        C=tc.C, max_iter=tc.max_iter, random_state=cfg.training.seed,
        class_weight="balanced" if cfg.training.class_weights == "balanced" else None,
    )  # fmt: skip
    classifier.fit(sp.hstack(matrices, format="csr"), gold)
    params = {
        "format_version": FORMAT_VERSION,
        "labels": list(LABELS),
        "classes": [LABELS[i] for i in classifier.classes_],
        "window": tc.window,
        "mask_target": cfg.model.mask_target,
        "segmenter": segmenter.name,
        "gazetteer": GAZETTEER_FILE if gazetteer else None,
        "blocks": {name: {"spec": b["spec"], "vocabulary": b["vocabulary"]} for name, b in blocks.items()},
    }
    arrays = {f"idf_{name}": b["idf"] for name, b in blocks.items()}
    arrays.update(coef=classifier.coef_, intercept=classifier.intercept_)
    return params, arrays, classifier


@dataclass
class TfidfPredictor:
    """The predictor interface (train/kinds.py): .labels and .predict(pairs) → [{label, probs}]."""

    params: dict
    arrays: dict
    labels: list[str]
    segmenter: Segmenter
    gazetteer: object = None

    @classmethod
    def from_run(cls, run_dir: Path, info: dict) -> "TfidfPredictor":
        model_dir = run_dir / "model"
        if info.get("status") != "complete":
            raise FileNotFoundError(f"{run_dir}: training has not finished (status {info.get('status')!r})")
        for name in (PARAMS_FILE, WEIGHTS_FILE):
            if not (model_dir / name).is_file():
                raise FileNotFoundError(f"{model_dir / name}: missing; the run's model folder is incomplete")
        try:
            params = json.loads((model_dir / PARAMS_FILE).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ValueError(f"{model_dir / PARAMS_FILE}: damaged ({err})") from None
        if params.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{model_dir / PARAMS_FILE}: format_version {params.get('format_version')!r}, "
                             f"this code reads {FORMAT_VERSION}")  # fmt: skip
        # allow_pickle=False: an npz can hold pickled objects, and loading one would run its code.
        try:
            with np.load(model_dir / WEIGHTS_FILE, allow_pickle=False) as npz:
                arrays = {key: npz[key] for key in npz.files}
        except (ValueError, OSError, zipfile.BadZipFile) as err:  # a pickled array raises ValueError here
            raise ValueError(f"{model_dir / WEIGHTS_FILE}: cannot load ({err})") from None
        if params["labels"] != info["labels"]:
            raise ValueError(f"{run_dir}: model labels {params['labels']} differ from run.json labels {info['labels']}")
        # The run keeps its own copy of the gazetteer (YAML, read with safe_load): features stay the same
        # however the project's gazetteer changes later.
        gazetteer = load_gazetteer(model_dir / params["gazetteer"]) if params.get("gazetteer") else None
        return cls(params, arrays, list(params["labels"]), get_segmenter(info["segmenter"]["name"]), gazetteer)

    def predict(self, pairs: list[tuple[str, str]]) -> list[dict]:
        # No bar of its own: batch predict calls this once per step under its one "predicting" bar.
        texts = Featurizer(self.segmenter, self.params["window"], self.gazetteer,
                           self.params.get("mask_target", False))(pairs, desc="")
        blocks = {
            name: {**block, "idf": self.arrays[f"idf_{name}"]} for name, block in self.params["blocks"].items()
        }
        seen = probabilities(transform(texts, blocks), self.arrays["coef"], self.arrays["intercept"])
        # Classes missing from the training data get probability 0, so every row carries every label.
        probs = np.zeros((len(pairs), len(self.labels)))
        probs[:, [self.labels.index(name) for name in self.params["classes"]]] = seen
        return [
            {"label": self.labels[int(row.argmax())], "probs": dict(zip(self.labels, map(float, row)))}
            for row in probs
        ]


def fit(cfg: Config, run_dir: Path, *, command: str = "", checkpoint: str | None = None, device: str = "cpu",
        precision: str = "auto") -> Path:  # fmt: skip
    """Train the baseline into run_dir (config.yaml is already there), writing the same files as a transformer run.
    It runs on the CPU in seconds: `device` and `precision` do not apply, and there is no checkpoint to resume."""
    segmenter = get_segmenter(cfg.model.segmenter)
    started = time.time()
    info = {
        "status": "running",
        "model_type": "tfidf",
        "command": command or " ".join(sys.argv),
        "seed": cfg.training.seed,
        "labels": list(LABELS),
        "segmenter": {"name": segmenter.name, "version": segmenter.version},
        "data": {
            split: {"path": path, "sha256": sha256_file(path)}
            for split, path in (("train", cfg.data.train), ("dev", cfg.data.dev), ("test", cfg.data.test))
            if Path(path).is_file()
        },
        "versions": package_versions(),
        "platform": platform.platform(),
    }
    model_dir = run_dir / "model"
    model_dir.mkdir(exist_ok=True)
    gazetteer = copy_gazetteer(cfg.model.gazetteer, model_dir)
    if gazetteer:
        info["gazetteer"] = {"path": cfg.model.gazetteer, "sha256": sha256_file(cfg.model.gazetteer)}
    _write_json(run_dir / "run.json", info)
    augment = swap_augmenter(cfg, gazetteer)
    rows = read_jsonl(cfg.data.train)
    params, arrays, _ = train_model(augment(rows) if augment else rows, cfg, segmenter, gazetteer)
    _write_json(model_dir / PARAMS_FILE, params)
    np.savez(model_dir / WEIGHTS_FILE, **arrays)

    dev = read_jsonl(cfg.data.dev)
    predictor = TfidfPredictor(params, arrays, list(LABELS), segmenter, gazetteer)
    predicted = [LABELS.index(out["label"]) for out in predictor.predict([(r["country"], r["text"]) for r in dev])]
    gold = [LABELS.index(row["label"]) for row in dev]
    accuracy = float(np.mean(np.array(predicted) == np.array(gold)))
    best_dev = {"accuracy": accuracy, "macro_f1": macro_f1(gold, predicted)}
    summary = {"best_epoch": None, "best_dev": best_dev, "train_seconds": round(time.time() - started, 1), "epochs": []}
    _write_json(run_dir / "metrics.json", summary)
    _write_json(run_dir / "run.json", {**info, "status": "complete"})
    log.info("tfidf dev macro-F1 %.4f; run folder %s", best_dev["macro_f1"], run_dir)
    return run_dir


def _write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
