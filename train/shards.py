"""Batch prediction over torchrun ranks: deal the documents out, predict each share, merge in document order.

Document i (in the order `iter_documents` yields them) goes to rank i % world_size. Each rank streams its
share through `predict_documents` into DIR/parts/rank-R-of-W/, which is an ordinary output folder with the
usual crash safety (ledger written last, torn lines dropped on --resume). When every rank is done, rank 0
interleaves the parts back (rank R's n-th document is document n·W + R) into DIR/sentences.jsonl,
articles.jsonl/csv, skipped.jsonl, documents.jsonl and summary.md: the same files, in the same order, as
one process writes. The parts are kept, so --resume with the same number of processes redoes only the
documents each rank had not finished.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import time
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from . import distributed
from .batch import (
    CSV_FIELDS,
    MARKER,
    Outputs,
    _csv_line,
    _read_rows,
    check_output_folder,
    predict_documents,
    write_summary,
)

PARTS = "parts"


def part_folder(out_dir: Path, rank: int, world: int) -> Path:
    return out_dir / PARTS / f"rank-{rank}-of-{world}"


def predict_sharded(predictor, documents: Iterable, gazetteer, out_dir: str | Path, *, resume: bool = False,
                    force: bool = False, **options) -> dict:  # fmt: skip
    """`predict_documents` for this process's share, then (rank 0) the merge; every rank gets the totals,
    plus the seconds from the first document to the merged files."""
    out_dir, world, rank = Path(out_dir), distributed.world_size(), distributed.rank()
    started = time.perf_counter()
    if world == 1:
        check_parts(out_dir, world, resume, force)
        if force:
            shutil.rmtree(out_dir / PARTS, ignore_errors=True)
        stats = predict_documents(predictor, documents, gazetteer, out_dir, resume=resume, force=force, **options)
        return {**stats, "seconds": round(time.perf_counter() - started, 3)}
    distributed.init("cpu", timeout=distributed.PREDICT_TIMEOUT)  # gloo: only small objects pass between ranks
    distributed.on_main(_prepare, out_dir, world, resume, force)
    options.setdefault("progress", distributed.is_main())  # one progress bar, not W interleaved ones
    share = islice(_with_global_ids(documents), rank, None, world)
    part = part_folder(out_dir, rank, world)
    stats = predict_documents(predictor, share, gazetteer, part, resume=resume, force=force, **options)
    every = distributed.gather(stats)  # waits for the slowest rank
    distributed.on_main(merge_parts, [part_folder(out_dir, r, world) for r in range(world)], out_dir, predictor.labels)
    distributed.shutdown()
    totals = {key: sum(s[key] for s in every) for key in stats}
    return {**totals, "seconds": round(time.perf_counter() - started, 3)}


class _Ids:
    """What Outputs.claim reads and writes, for the ids of the whole input rather than of one part."""

    def __init__(self):
        self.claimed: dict[str, tuple[str, str]] = {}
        self.finished: dict[str, tuple[str, str]] = {}


def _with_global_ids(documents: Iterable) -> Iterator:
    """Every rank gives every document the id one process would (a repeated file name becomes its path; a
    true duplicate is marked), so ids stay unique over the merged files and equal to a one-process run's."""
    ids = _Ids()
    for doc in documents:
        Outputs.claim(ids, doc)  # Outputs' own rule, on ids that span all ranks
        yield doc


def check_parts(out_dir: Path, world: int, resume: bool, force: bool) -> None:
    """For the part folders already in DIR: refuse to overwrite them without --force, or to resume them with
    another number of processes, since documents are dealt out by i % world_size."""
    parts = sorted((out_dir / PARTS).glob("rank-*-of-*"))
    worlds = {int(p.name.rsplit("-", 1)[-1]) for p in parts}
    if resume and worlds and worlds != {world}:
        raise ValueError(f"{out_dir}: its parts come from a {max(worlds)}-process run; resume it with "
                         f"{max(worlds)} processes in all (torchrun --nproc_per_node × --nnodes), not {world}")  # fmt: skip
    if parts and not (resume or force):
        raise FileExistsError(f"{out_dir}: already holds predictions (parts of a {max(worlds)}-process run); "
                              "pass --resume to continue or --force")  # fmt: skip
    if resume and world > 1 and not parts and (out_dir / "documents.jsonl").exists():
        raise ValueError(f"{out_dir}: written by a single process; resume it with one process, not {world}")


def _prepare(out_dir: Path, world: int, resume: bool, force: bool) -> None:
    """Rank 0, before any rank starts: refuse to clobber, or clear DIR for --force."""
    check_output_folder(out_dir)
    check_parts(out_dir, world, resume, force)
    if (out_dir / "documents.jsonl").exists() and not (resume or force):
        raise FileExistsError(f"{out_dir}: already holds predictions; pass --resume to continue or --force")
    if force:
        shutil.rmtree(out_dir / PARTS, ignore_errors=True)
        for name in (*Outputs.FILES, "summary.md"):
            (out_dir / name).unlink(missing_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Our marker (batch.check_output_folder): DIR is stance predict's, so --resume and --force may write in it.
    marker = {"made_by": "stance predict", "processes": world}
    (out_dir / MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    for rank in range(world):
        part_folder(out_dir, rank, world).mkdir(parents=True, exist_ok=True)


def document_order(parts: list[Path]) -> Iterator[tuple[int, dict]]:
    """(rank, ledger row) in the original document order: one document from each rank in turn."""
    ledgers = [_read_rows(part / "documents.jsonl") for part in parts]
    active = list(range(len(parts)))
    while active:
        for rank in list(active):
            row = next(ledgers[rank], None)
            if row is None:
                active.remove(rank)
            else:
                yield rank, row


def _records(path: Path) -> Iterator[tuple[str, str]]:
    """(article, the record's exact text) for each whole record of a part's output file."""
    if not path.exists():
        return
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            for row in islice(csv.reader(handle), 1, None):  # past the header
                yield row[0], _csv_line(row)
        return
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):
                yield json.loads(line)["article"], line


def merge_parts(parts: list[Path], out_dir: Path, labels: list[str]) -> None:
    """Write DIR's files from the parts, streaming: each part's records are already in its document order,
    so one pass per file takes each document's records from its rank's file in turn."""
    for name in Outputs.FILES:
        sources = [_records(part / name) for part in parts]
        heads = [next(source, None) for source in sources]
        temporary = out_dir / f".{name}.merging"
        with temporary.open("w", encoding="utf-8", newline="") as out:
            if name.endswith(".csv"):
                out.write(_csv_line(CSV_FIELDS))
            for rank, document in document_order(parts):
                taken = 0  # the ledger has one line per document, even for a true duplicate with the same id
                while heads[rank] is not None and heads[rank][0] == document["article"]:
                    if name == "documents.jsonl" and taken:
                        break
                    out.write(heads[rank][1])
                    heads[rank] = next(sources[rank], None)
                    taken += 1
        os.replace(temporary, out_dir / name)  # a kill mid-merge leaves the previous file whole
    write_summary(out_dir, labels)
