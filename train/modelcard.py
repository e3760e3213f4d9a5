"""write_model_card(run_dir): RUN/model/README.md, a Hugging Face model card built from what the run folder records.

Written when training finishes (transformer, TF-IDF and ensemble runs alike) and again at the end of `stance evaluate`,
so its tables always show every evaluation the folder holds. The TF-IDF baseline keeps its card in the same
place, RUN/model/README.md, beside its params.json and weights.npz: one place to look for every run, and the
folder a user would publish. Nothing is invented: each number comes from run.json, metrics.json or
RUN/eval/*/metrics.json, and a section with no data says so.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

CARD = "README.md"
# Licences of base models we know; the fine-tuned weights inherit them. Our code and data are MIT.
BASE_LICENSES = {
    "intfloat/multilingual-e5-small": "mit",
    "vinai/phobert-base": "mit",
    "vinai/phobert-large": "mit",
    "vinai/phobert-base-v2": "agpl-3.0",
}
LABEL_MEANINGS = {  # short; the binding definition is LABELS.md, expanded in data/GUIDELINES.md
    "pro_ukraine": "the sentence shows the country supporting Ukraine or acting against Russia's war "
                   "(aid, weapons, sanctions on Russia, condemnation of Russia)",
    "pro_russia": "the sentence shows the country supporting Russia's position or working against pressure "
                  "on Russia (blocking sanctions, blaming Ukraine or NATO, arming Russia)",
    "neutral": "the country is balanced or mediating: calls on both sides for talks or a ceasefire, hosts "
               "talks, abstains, keeps ties with both",
    "none": "the country is mentioned but shows no stance of its own on the conflict",
}  # fmt: skip
EVAL_ORDER = ("test", "realdev", "swap")


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def base_model(info: dict) -> str | None:
    """The hub id the run was fine-tuned from, or None (from scratch, TF-IDF, or a local folder)."""
    source = info.get("model_source") or ""
    if source.startswith("bundled:"):
        from .backbones import BUNDLED

        return BUNDLED.get(source.removeprefix("bundled:"), {}).get("source_model")
    if not source or source == "scratch" or source.startswith((".", "/", "~")) or Path(source).exists():
        return None
    return source


def _evaluations(run_dir: Path) -> list[tuple[str, dict]]:
    """(display name, metrics) for every RUN/eval/*/metrics.json; realdev named so whatever its folder is."""
    found = []
    for path in sorted((run_dir / "eval").glob("*/metrics.json")):
        metrics = _read_json(path)
        name = path.parent.name
        if "realdev" in str(metrics.get("data", {}).get("path", "")) and not name.startswith("realdev"):
            name = "realdev" + name.removeprefix("sentences")  # `--data .../realdev/sentences.jsonl` → eval/sentences
        found.append((name, metrics))
    return sorted(found, key=lambda item: (EVAL_ORDER.index(item[0]) if item[0] in EVAL_ORDER else len(EVAL_ORDER), item[0]))


def _front_matter(run_name: str, info: dict, dev: dict, evaluations: list[tuple[str, dict]], kind: str) -> dict:
    base = base_model(info)
    license_ = BASE_LICENSES.get(base, "other") if base else "mit"
    meta: dict = {"language": ["vi"], "license": license_}
    if license_ == "other":
        meta["license_name"] = f"same as {base}"
    if base:
        meta["base_model"] = base
    if kind == "transformer":
        meta["library_name"] = "transformers"
    meta["pipeline_tag"] = "text-classification"
    meta["tags"] = ["stance-detection", "target-dependent", "vietnamese", "news", "russia-ukraine-war", "vistance",
                    kind]  # fmt: skip
    meta["metrics"] = ["f1", "accuracy"]
    results = []
    for split, metrics in [("dev", dev), *[(name, m) for name, m in evaluations if m.get("backend", "torch") == "torch"]]:
        if not metrics or "macro_f1" not in metrics:
            continue
        values = [{"type": "f1", "value": round(float(metrics["macro_f1"]), 4), "name": "macro-F1", "args": {"average": "macro"}},
                  {"type": "accuracy", "value": round(float(metrics["accuracy"]), 4), "name": "accuracy"}]  # fmt: skip
        if metrics.get("swap_macro_f1") is not None:
            values.append({"type": "f1", "value": round(float(metrics["swap_macro_f1"]), 4), "name": "swap macro-F1"})
        if metrics.get("swap_consistency") is not None:
            values.append({"type": "swap_consistency", "value": round(float(metrics["swap_consistency"]), 4),
                           "name": "swap consistency"})  # fmt: skip
        results.append({
            "task": {"type": "text-classification", "name": "Country stance on the Russia–Ukraine war"},
            "dataset": {"name": f"ViStance {split}", "type": "vistance", "split": split},
            "metrics": values,
        })  # fmt: skip
    meta["model-index"] = [{"name": run_name, "results": results}]
    return meta


def _eval_table(dev: dict, evaluations: list[tuple[str, dict]], labels: list[str]) -> list[str]:
    lines = ["| data | examples | accuracy | macro-F1 | F_avg | ECE | " + " | ".join(f"F1 {l}" for l in labels) + " |",
             "|---|---:|---:|---:|---:|---:|" + "---:|" * len(labels)]  # fmt: skip
    if dev:
        lines.append(f"| dev (best epoch, from training) | | {dev.get('accuracy', 0):.4f} | {dev.get('macro_f1', 0):.4f} "
                     "| | |" + " |" * len(labels))  # fmt: skip
    for name, m in evaluations:
        per_class = m.get("per_class", {})
        cells = " | ".join(f"{per_class[l]['f1']:.4f}" if l in per_class else "" for l in labels)
        lines.append(f"| {name} | {m.get('n', '')} | {m['accuracy']:.4f} | {m['macro_f1']:.4f} | "
                     f"{m.get('f_avg', 0):.4f} | {m.get('calibration', {}).get('ece', 0):.4f} | {cells} |")  # fmt: skip
    swaps = [(name, m) for name, m in evaluations if m.get("swap_consistency") is not None]  # None: nothing to swap
    if swaps:
        lines += ["", "| data | swap consistency | swap macro-F1 |", "|---|---:|---:|"]
        lines += [f"| {name} | {m['swap_consistency']:.4f} | {m.get('swap_macro_f1') or float('nan'):.4f} |" for name, m in swaps]
    return lines


def _usage(run_dir: Path, info: dict, kind: str) -> list[str]:
    folder = run_dir / "model"
    segmenter = info.get("segmenter", {}).get("name", "none")
    cli = [
        "```bash", f'stance predict {run_dir} --country "Đức" --text "Đức công bố gói viện trợ quân sự mới cho Ukraine."',
        f"stance predict {run_dir} --input pages/ --output out/   # .txt/.html/.jsonl/.csv → per-article verdicts", "```",
    ]  # fmt: skip
    if kind != "transformer":
        return [f"This is a {kind} run (JSON + npz, no pickle): `transformers.pipeline` cannot load it. "
                "Use the `stance` command:", "", *cli]  # fmt: skip
    prepare = {
        "pyvi": "from pyvi import ViTokenizer\nsegment = ViTokenizer.tokenize  # the run's segmenter: pyvi",
        "underthesea": 'from underthesea import word_tokenize\nsegment = lambda s: word_tokenize(s, format="text")',
    }.get(segmenter, "segment = lambda s: s  # this run reads raw text (segmenter: none)")
    mark = ("\nThe run marks the target's mentions with « » before segmenting (`model.mark_target`); "
            "`stance predict` does it for you, the pipeline does not.\n") if info.get("mark_target") else ""  # fmt: skip
    return [
        "The model reads a pair: the target country (Vietnamese name, e.g. `Pháp`) as the first text and the sentence "
        "as the second, both prepared as in training (word segmentation below).", mark,
        "```python",
        "from transformers import pipeline",
        prepare,
        f'classifier = pipeline("text-classification", model="{folder}", top_k=None)',
        'sentence = "Đức công bố gói viện trợ quân sự mới cho Ukraine."',
        'print(classifier({"text": segment("Đức"), "text_pair": segment(sentence)}))',
        "```", "", "Or with the `stance` command, which applies the run's own preprocessing:", "", *cli,
    ]  # fmt: skip


def write_model_card(run_dir: str | Path) -> Path:
    """Write RUN/model/README.md from the run folder and return its path."""
    from .config import load_config

    run_dir = Path(run_dir)
    info = _read_json(run_dir / "run.json")
    if info.get("status") != "complete" or not (run_dir / "model").is_dir():
        raise FileNotFoundError(f"{run_dir}: no finished model to describe (status {info.get('status')!r})")
    cfg = load_config(run_dir / "config.yaml")
    kind = info.get("model_type", "transformer")  # transformer, tfidf or ensemble
    dev = _read_json(run_dir / "metrics.json").get("best_dev", {})
    evaluations = _evaluations(run_dir)
    labels = info.get("labels", list(LABEL_MEANINGS))
    meta = _front_matter(cfg.run_name, info, dev, evaluations, kind)
    base = meta.get("base_model")
    what = ("a word and character n-gram TF-IDF + logistic regression baseline" if kind == "tfidf"
            else "a weighted average of other runs' class probabilities (model/ensemble.json names them)"
            if kind == "ensemble"
            else f"fine-tuned from [{base}](https://huggingface.co/{base})" if base
            else "a transformer encoder trained from scratch" if info.get("model_source", "scratch") == "scratch"
            else f"fine-tuned from `{info['model_source']}`")  # fmt: skip
    data_rows = [f"| {split} | `{d['path']}` | `{d['sha256']}` |" for split, d in info.get("data", {}).items()]
    export = _read_json(run_dir / "onnx" / "export.json").get("variants", {})
    lines = [
        "---", yaml.safe_dump(meta, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
        f"# {cfg.run_name}: country stance on the Russia–Ukraine war in Vietnamese news", "",
        f"Given one Vietnamese sentence and one country it mentions, the model says that country's stance on the "
        f"Russia–Ukraine war. It is {what}, trained with ViStance "
        f"(`stance train`, seed {info.get('seed')}; command `{info.get('command', '')}`).", "",
        "## Labels", "", "| label | meaning |", "|---|---|",
        *[f"| `{label}` | {LABEL_MEANINGS.get(label, '')} |" for label in labels], "",
        "The binding definition and the hard-case rules are in the project's `data/GUIDELINES.md`. A country counts "
        "when named directly or through its capital, a state body or an official.", "",
        "## Training data", "",
        "ViStance's sentence-level dataset (`data/stance`, see its card `data/README.md`): Vietnamese news sentences, "
        "one example per (sentence, country) pair, split by story. Files and sha256 as trained:", "",
        "| split | file | sha256 |", "|---|---|---|", *data_rows, "",
        f"Preprocessing: segmenter `{info.get('segmenter', {}).get('name')}` {info.get('segmenter', {}).get('version', '')}"
        + (f", max length {info['max_length']} tokens" if info.get("max_length") else "")
        + (", target mentions marked « »" if info.get("mark_target") else "") + ".", "",
        "## Evaluation", "",
        *_eval_table(dev, evaluations, labels), "",
        "macro-F1 averages the four labels' F1; F_avg is the mean F1 of pro_ukraine and pro_russia (SemEval-2016 "
        "Task 6); ECE is the expected calibration error of the top-class probability. "
        + ("" if evaluations else "No `stance evaluate` has been run on this folder yet: only the dev score is known."),
        "",
    ]  # fmt: skip
    if export:
        lines += ["ONNX exports (`stance export`, RUN/onnx/; used with `--backend`):", ""]
        lines += [f"- `{name}`: {v['file']}, {'usable' if v['usable'] else 'refused: ' + v['reason']}" for name, v in export.items()]
        lines.append("")
    lines += [
        "## Intended use", "",
        "Research and media monitoring: counting which countries Vietnamese-language news presents as taking which side, "
        "with the evidence sentences shown to a reader. Use the per-article verdicts of `stance predict --input` "
        "together with their evidence, not single-sentence labels, and check samples by hand before drawing "
        "conclusions.", "",
        "## Limitations", "",
        "- Vietnamese only, and news register; the labels describe what a sentence shows a country doing or saying, "
        "not the country's actual policy.",
        "- Trained on a small, mostly authored dataset: the test split comes from the same sources, so compare it "
        "with the realdev row (real news) where the table has one. In the project's measurements errors concentrate "
        "on third countries in sentences that name several countries, and on articles whose gold verdict is `none` "
        "(one misread sentence is enough to give an article a stance).",
        "- A country must be found by the gazetteer (names, capitals, leaders); unknown officials are missed.",
        "- Not for decisions about people or for automated moderation. Probabilities are calibrated only as far "
        "as the ECE above says.", "",
        "## How to use", "", *_usage(run_dir, info, kind), "",
    ]  # fmt: skip
    path = run_dir / "model" / CARD
    temporary = path.with_name(CARD + ".tmp")
    temporary.write_text("\n".join(lines), encoding="utf-8")
    temporary.replace(path)
    return path
