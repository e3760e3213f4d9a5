"""Benchmark: sentences/s of the batch path (Predictor) against transformers.pipeline, and articles/s end to end.

Both model paths run in the same process on the same (country, sentence) pairs, taken from real pages
(data/articles, the shared seeds), with the same thread count; the pipeline gets its defaults (one example
per call; truncation to the run's max length, without which long pairs crash it) and the same word
segmentation done beforehand, so the ratio is about batching, length sorting,
dynamic padding and inference_mode, not about the segmenter. Usage:

    python bench/predict.py models/tiny [--pairs 2000] [--threads 1] [--batch-size 32]

Sentences/s here means (country, sentence) pairs per second: the unit the model classifies.

Scaling out: `python bench/predict.py models/tiny --procs 1,2 [--copies 20]` runs the real
`torchrun --nproc_per_node N -m train.cli predict` for each N, one after the other on the same pages (the real
pages, copied --copies times), and prints pairs/s and articles/s for each N and the scaling efficiency
against 1 process (rate_N / (N x rate_1)). Rates use the seconds the ranks spend predicting and merging,
as `stance predict` reports them; the wall time, with process start and model loading, is printed beside.
"""

from __future__ import annotations

import argparse
import os
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a finished run folder, e.g. models/tiny")
    parser.add_argument("--pairs", type=int, default=2000, help="about this many pairs are timed for our path")
    parser.add_argument("--baseline-pairs", type=int, default=400, help="about this many for the slow baseline")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--gazetteer", default=str(REPO / "data" / "countries.yaml"))
    parser.add_argument("--procs", help="scaling mode: comma-separated process counts, e.g. 1,2 (first is the base)")
    parser.add_argument("--copies", type=int, default=20, help="scaling mode: copies of the real pages to predict")
    args = parser.parse_args()
    if args.procs:
        return scaling(args.run, [int(n) for n in args.procs.split(",")], args.threads, args.copies, args.batch_size)

    import torch
    from transformers import pipeline

    from train.batch import iter_documents, predict_documents
    from train.mentions import load_gazetteer
    from train.predict import Predictor

    torch.set_num_threads(args.threads)
    gazetteer = load_gazetteer(args.gazetteer)
    predictor = Predictor.from_run(args.run, batch_size=args.batch_size)
    pairs = collect_pairs(gazetteer)
    seg = predictor.segmenter
    segmented = [predictor.model_input(country, text) for country, text in pairs]  # marked and segmented
    print(f"{len(pairs)} distinct pairs from real pages (timed over ~{args.pairs}), segmenter {seg.name}, {args.threads} thread(s), "
          f"batch size {args.batch_size}, torch {torch.__version__}")  # fmt: skip

    # Ours, on pre-segmented text (segmenter "none" for this timing) so both sides do the same work.
    from train.segment import get_segmenter

    fast = Predictor(predictor.tokenizer, predictor.model, predictor.labels, get_segmenter("none"),
                     predictor.max_length, args.batch_size)  # fmt: skip
    fast.predict(segmented[:64])  # warm-up
    ours_rate, ours = timed_rounds(fast.predict, segmented, args.pairs)
    lengths = [len(ids) for ids in fast._encode(segmented)["input_ids"]]
    token_rate = ours_rate * sum(lengths) / len(lengths)
    limit = matmul_gflops()
    used = token_rate * flops_per_token(predictor.model.config) / 1e9
    print(f"FLOP use     {token_rate:8.1f} tokens/s x {flops_per_token(predictor.model.config) / 1e6:.1f} MFLOP/token = "
          f"{used:.2f} GFLOP/s of the {limit:.2f} GFLOP/s fp32 matmul limit measured here: {used / limit:.0%}")  # fmt: skip

    classifier = pipeline("text-classification", model=str(Path(args.run) / "model"), device="cpu", top_k=None)
    inputs = [{"text": c, "text_pair": t} for c, t in segmented]
    # Default settings (batch size 1, no sorting), plus the truncation every encoder needs past its positions.
    truncate = {"truncation": "only_second", "max_length": predictor.max_length}
    classifier(inputs[:8], **truncate)  # warm-up
    base_rate, theirs = timed_rounds(lambda items: classifier(items, **truncate), inputs, args.baseline_pairs)
    agree = sum(o["label"] == max(t, key=lambda d: d["score"])["label"] for o, t in zip(ours, theirs)) / len(ours)

    print(f"model path   ours: {ours_rate:8.1f} pairs/s   pipeline(default): {base_rate:8.1f} pairs/s   "
          f"ratio {ours_rate / base_rate:.1f}x   (same labels on {agree:.1%} of pairs)")  # fmt: skip

    rate, _ = timed_rounds(predictor.predict, pairs, args.pairs)
    print(f"ours with segmentation ({seg.name}) inside: {rate:8.1f} pairs/s")

    # End to end: read, clean, split, find mentions, classify, aggregate, write — repeated to fill time.
    folders = [str(p) for p in page_folders()] * 5
    with tempfile.TemporaryDirectory() as out:
        docs = list(iter_documents(folders))
        for number, doc in enumerate(docs):
            doc.article = f"{number}:{doc.article}"  # repeated pages are distinct documents
        start = time.perf_counter()
        stats = predict_documents(predictor, iter(docs), gazetteer, out, progress=False)
        seconds = time.perf_counter() - start
    print(f"end to end: {len(docs) / seconds:8.2f} articles/s, {stats['sentences'] / seconds:8.1f} sentences/s "
          f"({len(docs)} pages, {stats['pairs']} pairs, {seconds:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
