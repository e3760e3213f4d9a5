"""Benchmark: pairs/s of torch fp32, ONNX Runtime fp32 and int8, and transformers.pipeline; articles/s end to end.

Every model path runs in the same process on the same (country, sentence) pairs, taken from real pages
(data/articles, the shared seeds), with the same thread count. The model paths are timed on pre-segmented
text, so the ratios are about the model and batching, not the segmenter. The pipeline gets its defaults (one
example per call; truncation to the run's max length, without which long pairs crash it). The ONNX files come
from `stance export RUN --onnx --int8` (run here first when RUN/onnx lacks them); they are timed whether or
not their accuracy gate passed, and the gate's verdict is printed beside them. Usage:

    python bench/predict.py models/tiny [--pairs 2000] [--threads 1] [--batch-size 32] [--json out.json]

Pairs/s means (country, sentence) pairs per second: the unit the model classifies. End to end (read, clean,
split, find mentions, classify, aggregate, write) runs on the distinct pages once per backend, then on the
pages repeated --repeat times as distinct documents to show whether memory grows with the corpus (the pair
cache makes the repeats cheap, so only the 1x run gives articles/s).

Scaling out: `python bench/predict.py models/tiny --procs 1,2 [--copies 20]` runs the real
`torchrun --nproc_per_node N -m train.cli predict` for each N, one after the other on the same pages (the real
pages, copied --copies times), and prints pairs/s and articles/s for each N and the scaling efficiency
against 1 process (rate_N / (N x rate_1)). Rates use the seconds the ranks spend predicting and merging,
as `stance predict` reports them; the wall time, with process start and model loading, is printed beside.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def page_folders() -> list[Path]:
    return [p for p in (REPO / "data" / "articles", REPO.parent / "shared" / "seeds") if p.is_dir()]


def collect_pairs(gazetteer) -> list[tuple[str, str]]:
    """Every distinct (country, sentence) pair of the real pages, as the batch pipeline would make them."""
    from train.batch import iter_documents, prepare

    pairs: dict[tuple[str, str], None] = {}
    for doc in iter_documents([str(p) for p in page_folders()]):
        item = prepare(doc, gazetteer)
        pairs.update(((country, item.sentences[index]), None) for index, country in item.pairs)
    if not pairs:
        raise SystemExit("no pages with country mentions under data/articles or ../shared/seeds")
    return list(pairs)


def matmul_gflops(size: int = 1024, seconds: float = 2.0) -> float:
    """fp32 GFLOP/s of a square matmul on this CPU with the current thread count: the FLOP limit we compare to."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)  # warm-up
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.mm(a, b)
        reps += 1
    return 2 * size**3 * reps / (time.perf_counter() - start) / 1e9


def flops_per_token(config) -> float:
    """Forward FLOPs per token of a BERT/RoBERTa encoder's dense layers: per layer Q, K, V and output
    projections (4·h²) and the feed-forward pair (2·h·i) multiply-adds, 2 FLOPs each. Attention scores add
    4·n·h per token for a sequence of n tokens, under 4% at the lengths of news sentences, and are left out."""
    h, i, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    return 2 * layers * (4 * h * h + 2 * h * i)


def timed_rounds(fn, pairs: list, total: int) -> tuple[float, list]:
    """Call fn on the distinct pairs as many times as it takes to cover `total` (no cache survives a call)."""
    rounds = max(1, -(-total // len(pairs)))
    start = time.perf_counter()
    for _ in range(rounds):
        result = fn(pairs)
    return rounds * len(pairs) / (time.perf_counter() - start), result


def scaling(run: str, procs: list[int], threads: int, copies: int, batch_size: int) -> None:
    """torchrun predict at each process count on the same copied pages; see the module docstring."""
    import json
    import shutil
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    with tempfile.TemporaryDirectory() as tmp:
        pages = Path(tmp) / "pages"
        for copy in range(copies):  # distinct names: every copy is its own document
            for folder in page_folders():
                for file in sorted(folder.iterdir()):
                    if file.suffix in (".txt", ".html"):
                        pages.mkdir(exist_ok=True)
                        shutil.copyfile(file, pages / f"{copy:03d}_{folder.name}_{file.name}")
        print(f"{len(list(pages.iterdir()))} pages ({copies} copies of the real ones), {threads} thread(s) per process, "
              f"batch size {batch_size}, {os.cpu_count()} CPU cores")  # fmt: skip
        print(f"{'procs':>5} {'pairs/s':>9} {'articles/s':>10} {'speed-up':>8} {'efficiency':>10} {'seconds':>8} "
              f"{'wall s':>7}  output")  # fmt: skip
        base = reference = None
        for n in procs:
            out = Path(tmp) / f"out-{n}"
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(n),
                       "-m", "train.cli", "predict", run, "--input", str(pages), "--output", str(out), "--device",
                       "cpu", "--threads", str(threads), "--batch-size", str(batch_size)]  # fmt: skip
            start = time.perf_counter()
            done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if done.returncode != 0:
                raise SystemExit(f"{n} process(es) failed:\n{done.stderr[-2000:]}")
            stats = json.loads(done.stdout.strip().splitlines()[-1])
            pairs, articles = stats["pairs"] / stats["seconds"], (stats["ok"] + stats["skipped"]) / stats["seconds"]
            base = base or pairs
            merged = (out / "sentences.jsonl").read_bytes() + (out / "articles.csv").read_bytes()
            reference = reference or merged
            same = "same as first" if merged == reference else "DIFFERS from first"
            print(f"{n:>5} {pairs:>9.1f} {articles:>10.2f} {pairs / base:>7.2f}x {pairs / base / n * procs[0]:>10.0%} "
                  f"{stats['seconds']:>8.1f} {wall:>7.1f}  {same}")  # fmt: skip


def rss_mb() -> float:
    """Resident memory now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def end_to_end(predictor, gazetteer, repeat: int = 1) -> tuple[float, dict, float]:
    """(articles/s, batch stats, RSS after) for the real pages, `repeat` times as distinct documents, streamed."""
    from train.batch import iter_documents, predict_documents

    def documents():
        for number in range(repeat):
            for doc in iter_documents([str(p) for p in page_folders()]):
                doc.article = f"{number}:{doc.article}"
                yield doc

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        stats = predict_documents(predictor, documents(), gazetteer, out, progress=False)
        seconds = time.perf_counter() - start
    return (stats["ok"] + stats["skipped"]) / seconds, stats, rss_mb()


def onnx_models(run: Path) -> dict:
    """{backend: (OnnxModel, export verdict)} for onnx and onnx-int8, exporting first when they are missing."""
    import json

    from train.export import EXPORT_DIR, FILES, MANIFEST, OnnxModel, _session, export_onnx

    manifest_path = run / EXPORT_DIR / MANIFEST
    manifest = json.loads(manifest_path.read_text(encoding="utf-8")) if manifest_path.is_file() else {}
    if set(manifest.get("variants", {})) != set(FILES):
        print(f"exporting {run} to ONNX (fp32 + int8) with its accuracy gate ...", flush=True)
        manifest = export_onnx(run, int8=True)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(run / "model")
    models = {}
    for backend, variant in manifest["variants"].items():
        verdict = "usable" if variant["usable"] else f"refused by the gate: {variant['reason']}"
        models[backend] = (OnnxModel(_session(run / EXPORT_DIR / variant["file"]), config), verdict)
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder, e.g. models/tiny")
    parser.add_argument("--pairs", type=int, default=2000, help="about this many pairs are timed for our path")
    parser.add_argument("--baseline-pairs", type=int, default=400, help="about this many for the slow baseline")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=5, help="end to end: pages repeated this many times for memory")
    parser.add_argument("--gazetteer", default=str(REPO / "data" / "countries.yaml"))
    parser.add_argument("--procs", help="scaling mode: comma-separated process counts, e.g. 1,2 (first is the base)")
    parser.add_argument("--copies", type=int, default=20, help="scaling mode: copies of the real pages to predict")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.procs:
        return scaling(args.run, [int(n) for n in args.procs.split(",")], args.threads, args.copies, args.batch_size)

    import dataclasses
    import json

    import torch
    from transformers import pipeline

    from train.mentions import load_gazetteer
    from train.predict import load_predictor
    from train.segment import get_segmenter
    from train.transformer import TransformerPredictor

    torch.set_num_threads(args.threads)
    run = Path(args.run)
    gazetteer = load_gazetteer(args.gazetteer)
    predictor = load_predictor(run, batch_size=args.batch_size)
    pairs = collect_pairs(gazetteer)
    seg = predictor.segmenter
    segmented = [predictor.model_input(country, text) for country, text in pairs]  # marked and segmented
    print(f"{len(pairs)} distinct pairs from real pages (timed over ~{args.pairs}), segmenter {seg.name}, {args.threads} thread(s), "
          f"batch size {args.batch_size}, torch {torch.__version__}")  # fmt: skip

    # Every model path on pre-segmented text (segmenter "none" for this timing) so all do the same work.
    fast = TransformerPredictor(predictor.tokenizer, predictor.model, predictor.labels, get_segmenter("none"),
                     predictor.max_length, args.batch_size)  # fmt: skip
    fast.predict(segmented[:64])  # warm-up
    rates, agreement, verdicts = {}, {}, {}
    rates["torch_fp32"], ours = timed_rounds(fast.predict, segmented, args.pairs)
    lengths = [len(ids) for ids in fast._encode(segmented)["input_ids"]]
    token_rate = rates["torch_fp32"] * sum(lengths) / len(lengths)
    limit = matmul_gflops()
    used = token_rate * flops_per_token(predictor.model.config) / 1e9
    print(f"FLOP use     {token_rate:8.1f} tokens/s x {flops_per_token(predictor.model.config) / 1e6:.1f} MFLOP/token = "
          f"{used:.2f} GFLOP/s of the {limit:.2f} GFLOP/s fp32 matmul limit measured here: {used / limit:.0%}")  # fmt: skip

    onnx_predictors = {}
    for backend, (model, verdict) in onnx_models(run).items():
        key = {"onnx": "ort_fp32", "onnx-int8": "ort_int8"}[backend]
        onnx_predictors[key] = dataclasses.replace(fast, model=model)
        onnx_predictors[key].predict(segmented[:64])  # warm-up
        rates[key], theirs = timed_rounds(onnx_predictors[key].predict, segmented, args.pairs)
        agreement[key] = sum(o["label"] == t["label"] for o, t in zip(ours, theirs)) / len(ours)
        verdicts[key] = verdict

    classifier = pipeline("text-classification", model=str(run / "model"), device="cpu", top_k=None)
    inputs = [{"text": c, "text_pair": t} for c, t in segmented]
    # Default settings (batch size 1, no sorting), plus the truncation every encoder needs past its positions.
    truncate = {"truncation": "only_second", "max_length": predictor.max_length}
    classifier(inputs[:8], **truncate)  # warm-up
    rates["pipeline"], theirs = timed_rounds(lambda items: classifier(items, **truncate), inputs, args.baseline_pairs)
    agreement["pipeline"] = sum(o["label"] == max(t, key=lambda d: d["score"])["label"] for o, t in zip(ours, theirs)) / len(ours)

    for key in ("torch_fp32", "ort_fp32", "ort_int8", "pipeline"):
        if key in rates:
            same = f"same label as torch fp32 on {agreement[key]:.1%} of pairs" if key in agreement else "the reference"
            note = f"; export {verdicts[key]}" if key in verdicts else ""
            print(f"model path   {key:10s} {rates[key]:8.1f} pairs/s  {rates[key] / rates['torch_fp32']:5.2f}x torch fp32  ({same}{note})")

    rate, _ = timed_rounds(predictor.predict, pairs, args.pairs)
    print(f"torch fp32 with segmentation ({seg.name}) inside: {rate:8.1f} pairs/s")

    e2e = {}
    for key, model in (("torch_fp32", predictor.model), ("ort_int8", onnx_predictors.get("ort_int8", fast).model)):
        e2e[key], stats, memory = end_to_end(dataclasses.replace(predictor, model=model), gazetteer)
        print(f"end to end ({key}): {e2e[key]:8.2f} articles/s ({stats['ok'] + stats['skipped']} pages, {stats['pairs']} pairs, "
              f"{stats['reused']} reused), RSS {memory:.0f} MB")  # fmt: skip
    _, stats, memory_repeated = end_to_end(dataclasses.replace(predictor, model=onnx_predictors.get("ort_int8", fast).model),
                                           gazetteer, args.repeat)  # fmt: skip
    print(f"end to end on the pages x{args.repeat}: RSS {memory_repeated:.0f} MB against {memory:.0f} MB at x1 "
          f"({stats['pairs']} pairs, {stats['reused']} reused); peak RSS of the whole bench {peak_rss_mb():.0f} MB")  # fmt: skip

    if args.json:
        figures = {
            **{key: round(rates.get(key, float("nan")), 2) for key in ("torch_fp32", "ort_fp32", "ort_int8", "pipeline")},
            "articles_per_s": round(e2e["torch_fp32"], 3),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            "ort_int8_articles_per_s": round(e2e["ort_int8"], 3),
            "ort_int8_over_torch_fp32": round(rates.get("ort_int8", float("nan")) / rates["torch_fp32"], 3),
            "same_label_as_torch_fp32": {key: round(value, 4) for key, value in agreement.items()},
            "export_verdicts": verdicts,
            "rss_mb_end_to_end": {"x1": round(memory, 1), f"x{args.repeat}": round(memory_repeated, 1)},
            "run": str(run), "pairs": len(pairs), "threads": args.threads, "batch_size": args.batch_size,
            "torch": torch.__version__, "device": platform.processor() or platform.machine(),
        }  # fmt: skip
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
