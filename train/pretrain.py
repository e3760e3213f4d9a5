"""pretrain(cfg) → a run folder whose backbone/ is an encoder trained further as a masked LM on unlabeled text.

Domain-adaptive pretraining: the encoder reads the users' own news (or ../shared/corpora) with 15% of its tokens
masked and learns to restore them; `stance train` then starts from RUN/backbone (model.name_or_path).

The inputs are read line by line (.xz through lzma), never whole: consecutive lines of one document are packed
into blocks of at most model.max_length tokens (a line longer than that is cut), and the blocks are written to an
Arrow file inside the run folder (memory-mapped, so a corpus larger than memory is fine) that the Trainer reads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import lzma
import platform
import re
import shutil
import sys
import time
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

import datasets
import torch
import transformers
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import (
    AutoConfig,
    AutoModelForMaskedLM,
    AutoTokenizer,
    DataCollatorForLanguageModeling,
    ProgressCallback,
    RobertaForMaskedLM,
    Trainer,
    TrainingArguments,
)

from .config import PretrainConfig, dump_config, load_pretrain_config
from .data import read_json, sha256_file
from .fit import RunFolderError, _diff_keys, last_complete_checkpoint
from .runinfo import package_versions, run_log
from .transformer import TrainingBar
from .modeling import learn_phobert_tokenizer, resolve_source, scratch_config
from .segment import get_segmenter

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".jsonl")
# A tokenizer learned from scratch sees at most this many lines: enough for a few thousand merges, and a
# multi-gigabyte corpus is not held in memory for it.
TOKENIZER_LINES = 200_000
_SPACE_BEFORE = re.compile(r" ([,.;:!?%)\]}…])")
_SPACE_AFTER = re.compile(r"([(\[{]) ")


def input_files(inputs: Iterable[str]) -> list[Path]:
    """The text files named by data.inputs: files as given, folders searched recursively (in name order)."""
    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p))
            if not found:
                raise FileNotFoundError(f"data.inputs: folder {path} holds no .txt, .jsonl or .xz of them")
            files += found
        elif path.is_file():
            if not _kind(path):
                raise ValueError(f"data.inputs: {path} is not .txt, .jsonl, .txt.xz or .jsonl.xz")
            files.append(path)
        else:
            raise FileNotFoundError(f"data.inputs: {path} not found")
    return files


def _kind(path: Path) -> str:
    name = path.name.removesuffix(".xz")
    return next((suffix for suffix in TEXT_SUFFIXES if name.endswith(suffix)), "")


def iter_documents(files: list[Path], text_field: str = "text") -> Iterator[list[str]]:
    """Each document as its non-blank lines: in .txt a blank line ends a document, in .jsonl a record is one."""
    for path in files:
        opener = lzma.open if path.suffix == ".xz" else open
        number = 0
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                if _kind(path) == ".jsonl":
                    for number, line in enumerate(handle, 1):
                        if line.strip():
                            lines = [part.strip() for part in _record_text(line, text_field, path, number).splitlines()]
                            if any(lines):
                                yield [part for part in lines if part]
                    continue
                document: list[str] = []
                for number, line in enumerate(handle, 1):
                    line = line.strip()
                    if line:
                        document.append(line)
                    elif document:
                        yield document
                        document = []
                if document:
                    yield document
        except UnicodeDecodeError:
            raise ValueError(f"{path}:{number + 1}: not UTF-8 text") from None
        except (lzma.LZMAError, EOFError) as err:
            raise ValueError(f"{path}: damaged .xz file ({err})") from None


def _record_text(line: str, field: str, path: Path, number: int) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{number}: not a JSON object ({err.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get(field), str):
        raise ValueError(f"{path}:{number}: no text field '{field}' (set data.text_field)")
    return record[field]


def cap_lines(documents: Iterable[list[str]], max_lines: int) -> Iterator[list[str]]:
    """The documents, cut so that at most max_lines lines come out in all (0: no cap)."""
    left = max_lines or float("inf")
    for document in documents:
        if left <= 0:
            return
        document = document[: int(min(left, len(document)))]
        left -= len(document)
        yield document


def unsegment(line: str) -> str:
    """Word-segmented text ("Bộ_trưởng Quốc_phòng Nga ,") back to ordinary text ("Bộ trưởng Quốc phòng Nga,"),
    which is what a raw-text model such as e5 reads when it is fine-tuned and used."""
    line = line.replace("_", " ")
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub(r"\1", line))


def text_preparer(segmenter_name: str, segmented: bool):
    """The function that turns an input line into what the model reads (see PretrainDataConfig.segmented)."""
    segmenter = get_segmenter(segmenter_name)
    if segmenter.name == "none":
        return unsegment if segmented else (lambda line: line)
    return (lambda line: line) if segmented else segmenter


def iter_blocks(documents: Iterable[list[str]], tokenizer, max_length: int) -> Iterator[dict]:
    """Pack consecutive lines of each document into blocks of at most max_length tokens, special tokens
    included; no block spans two documents, and a line longer than a block is cut into several."""
    first, last = tokenizer.cls_token_id, tokenizer.sep_token_id
    if first is None or last is None:
        raise ValueError(f"model.name_or_path: the tokenizer ({type(tokenizer).__name__}) has no cls/sep tokens to "
                         "frame a block with; a BERT- or RoBERTa-style encoder is needed")  # fmt: skip
    room = max_length - 2

    def framed(block: list[int]) -> dict:
        # BERT ([CLS] … [SEP]) and RoBERTa (<s> … </s>) frame one sequence alike; the mask keeps the collator
        # from masking the frame.
        return {"input_ids": [first, *block, last], "special_tokens_mask": [1, *[0] * len(block), 1]}

    for document in documents:
        block: list[int] = []
        for ids in tokenizer(document, add_special_tokens=False)["input_ids"]:
            for start in range(0, len(ids), room):
                piece = ids[start : start + room]
                if block and len(block) + len(piece) > room:
                    yield framed(block)
                    block = []
                block += piece
        if block:
            yield framed(block)


def _blocks(files: list[str], text_field: str, max_examples: int, segmenter: str, segmented: bool, tokenizer,
            max_length: int) -> Iterator[dict]:  # fmt: skip
    prepare = text_preparer(segmenter, segmented)
    documents = cap_lines(iter_documents([Path(f) for f in files], text_field), max_examples)
    yield from iter_blocks(([prepare(line) for line in doc] for doc in documents), tokenizer, max_length)


def pretrain(cfg: PretrainConfig, *, force: bool = False, resume: bool = False, command: str = "") -> Path:
    """Run masked-language-model training described by `cfg` into `cfg.run_dir`; return that folder.

    Inputs are checked before the run folder is touched; a fresh run that fails before its first checkpoint
    removes its folder again.
    """
    run_dir = cfg.run_dir
    files = input_files(cfg.data.inputs)
    hashes = [{"path": str(path.resolve()), "sha256": sha256_file(path)} for path in files]
    checkpoint = _prepare_run_dir(cfg, run_dir, hashes, force=force, resume=resume)
    if checkpoint == "complete":
        log.info("%s is already complete; nothing to resume", run_dir)
        return run_dir
    torch.set_num_threads(cfg.training.threads)
    transformers.set_seed(cfg.training.seed)
    try:
        with run_log(run_dir / "pretrain.log"), logging_redirect_tqdm():
            return _train(cfg, run_dir, files, hashes, checkpoint, command)
    except BaseException:
        if not resume and last_complete_checkpoint(run_dir / "checkpoints") is None:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def _train(cfg: PretrainConfig, run_dir: Path, files: list[Path], hashes: list[dict], checkpoint, command: str) -> Path:
    tokenizer, model, head = _build_model(cfg, run_dir, files)
    max_length = min(cfg.model.max_length, _position_limit(model))
    info = _run_info(cfg, command, hashes, head, max_length, status="running")
    _write_json(run_dir / "run.json", info)
    log.info("packing %s into blocks of at most %d tokens (%s)", ", ".join(str(f) for f in files), max_length,
             _preparation_note(cfg))  # fmt: skip
    # The generator's arguments are plain values plus the tokenizer, which `datasets` fingerprints: a resumed
    # run with the same config finds the Arrow file it wrote before instead of reading the corpus again.
    blocks = datasets.Dataset.from_generator(
        _blocks,
        gen_kwargs={"files": [str(f) for f in files], "text_field": cfg.data.text_field,
                    "max_examples": cfg.data.max_examples, "segmenter": cfg.model.segmenter,
                    "segmented": cfg.data.segmented, "tokenizer": tokenizer, "max_length": max_length},
        cache_dir=str(run_dir / "cache"),
    )  # fmt: skip
    if not len(blocks):
        raise ValueError(f"data.inputs: no text in {', '.join(str(f) for f in files)}")
    tokens = sum(len(ids) for ids in blocks["input_ids"])
    log.info("%d blocks, %d tokens", len(blocks), tokens)
    args = TrainingArguments(
        output_dir=str(run_dir / "checkpoints"),
        max_steps=cfg.training.max_steps or -1,
        num_train_epochs=cfg.training.epochs,
        per_device_train_batch_size=cfg.training.batch_size,
        learning_rate=cfg.training.learning_rate,
        weight_decay=cfg.training.weight_decay,
        warmup_steps=cfg.training.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        save_strategy="steps",
        save_steps=cfg.training.save_steps,
        save_total_limit=2,
        logging_strategy="steps",
        logging_steps=max(1, min(50, cfg.training.save_steps, (cfg.training.max_steps or 500) // 10)),
        seed=cfg.training.seed,
        data_seed=cfg.training.seed,
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=cfg.training.mlm_probability)
    trainer = MaskedOnlyTrainer(model=model, args=args, train_dataset=blocks, processing_class=tokenizer,
                                data_collator=collator)  # fmt: skip
    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(TrainingBar())
    started, cpu_started = time.time(), time.process_time()
    result = trainer.train(resume_from_checkpoint=checkpoint)
    seconds, cpu_seconds = time.time() - started, time.process_time() - cpu_started
    trainer.save_model(str(run_dir / "backbone"))  # encoder + MLM head + tokenizer
    (run_dir / "backbone" / "training_args.bin").unlink(missing_ok=True)  # a pickle no loader needs
    losses = [row for row in trainer.state.log_history if "loss" in row]
    (run_dir / "train_log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in trainer.state.log_history),
                                             encoding="utf-8")  # fmt: skip
    info.update(status="complete", steps=trainer.state.global_step, epochs=round(trainer.state.epoch or 0, 4),
                blocks=len(blocks), tokens=tokens, train_seconds=round(seconds, 1),
                # CPU time: on a shared machine, the time these steps need, whatever else is running
                train_cpu_seconds=round(cpu_seconds, 1), steps_this_call=trainer.state.global_step - _step(checkpoint),
                train_loss=round(result.training_loss, 4),
                first_loss=round(losses[0]["loss"], 4) if losses else None,
                last_loss=round(losses[-1]["loss"], 4) if losses else None)  # fmt: skip
    _write_json(run_dir / "run.json", info)
    # Checkpoints and the block cache exist only to resume; the result lives in backbone/.
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    shutil.rmtree(run_dir / "cache", ignore_errors=True)
    log.info("MLM loss %s → %s over %d steps; backbone %s (model.name_or_path for `stance train`)",
             info["first_loss"], info["last_loss"], info["steps"], run_dir / "backbone")  # fmt: skip
    return run_dir


def _step(checkpoint: str | None) -> int:
    return int(checkpoint.rsplit("-", 1)[-1]) if checkpoint else 0


class MaskedOnlyTrainer(Trainer):
    """Trainer whose MLM loss runs the prediction head on the masked positions only: the model's own loss (mean
    cross-entropy over the masked tokens) without the vocabulary-wide logits of the 85% of positions the loss
    ignores. For e5-small-vi that head (384 × 36k) is a large share of each step on a CPU."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        head = getattr(model, "cls", None) or getattr(model, "lm_head", None)  # BERT / RoBERTa families
        if head is None or return_outputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        labels = inputs.pop("labels")
        hidden = model.base_model(**inputs).last_hidden_state
        chosen = labels != -100
        loss = torch.nn.functional.cross_entropy(head(hidden[chosen]), labels[chosen], reduction="sum")
        count = num_items_in_batch if num_items_in_batch is not None else chosen.sum()
        return loss / max(int(count), 1)


def _build_model(cfg: PretrainConfig, run_dir: Path, files: list[Path]):
    """Tokenizer, masked-LM model and a note on where its MLM head came from (for the log and run.json)."""
    if not cfg.model.name_or_path:
        tokenizer_dir = run_dir / "tokenizer"
        if (tokenizer_dir / "vocab.txt").is_file():  # resuming: the tokenizer the checkpoints were trained with
            tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
        else:
            prepare = text_preparer(cfg.model.segmenter, cfg.data.segmented)
            lines = (prepare(line) for doc in iter_documents(files, cfg.data.text_field) for line in doc)
            limit = min(cfg.data.max_examples or TOKENIZER_LINES, TOKENIZER_LINES)
            log.info("learning a BPE tokenizer (%d merges) from up to %d lines", cfg.model.scratch.bpe_merges, limit)
            tokenizer = learn_phobert_tokenizer(islice(lines, limit), cfg.model.scratch.bpe_merges, tokenizer_dir)
        model = RobertaForMaskedLM(scratch_config(cfg.model, tokenizer))
        return tokenizer, model, {"source": "scratch", "initialised": "all weights (from-scratch model)"}
    source = resolve_source(cfg.model.name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = AutoConfig.from_pretrained(source)
    for key in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
        if hasattr(config, key):
            setattr(config, key, cfg.model.dropout)
    model, loading = AutoModelForMaskedLM.from_pretrained(source, config=config, output_loading_info=True)
    missing = sorted(loading.get("missing_keys") or [])
    tied = model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    head = {"source": str(cfg.model.name_or_path), "tied_to_input_embeddings": tied}
    if missing:
        # The bundled encoders ship as a bare BertModel: their MLM head starts fresh, and with tied embeddings
        # its output matrix is the (pretrained) input embedding table, so only a small transform is new.
        head["initialised"] = missing
        log.warning("%s has no MLM head: initialised %s fresh%s", cfg.model.name_or_path, ", ".join(missing),
                    "; its output layer is tied to the input embeddings" if tied else "")  # fmt: skip
    else:
        head["initialised"] = []
        log.info("%s: pretrained MLM head loaded", cfg.model.name_or_path)
    return tokenizer, model, head


def _position_limit(model) -> int:
    positions = getattr(model.config, "max_position_embeddings", 512)
    if getattr(model.config, "model_type", "") in ("roberta", "xlm-roberta", "camembert"):
        positions -= 2  # RoBERTa-family positions start after the padding index
    return positions


def _preparation_note(cfg: PretrainConfig) -> str:
    if cfg.model.segmenter == "none":
        return "segmented text: underscores read as spaces" if cfg.data.segmented else "raw text as is"
    return "segmented text as is" if cfg.data.segmented else f"segmented with {cfg.model.segmenter}"


def _run_info(cfg: PretrainConfig, command: str, hashes: list[dict], head: dict, max_length: int, status: str) -> dict:
    segmenter = get_segmenter(cfg.model.segmenter)
    return {
        "kind": "pretrain",
        "status": status,
        "command": command or " ".join(sys.argv),
        "seed": cfg.training.seed,
        "model_source": cfg.model.name_or_path or "scratch",
        "mlm_head": head,
        "segmenter": {"name": segmenter.name, "version": segmenter.version},
        "text": _preparation_note(cfg),
        "max_length": max_length,
        "max_examples": cfg.data.max_examples,
        "data": hashes,
        "versions": package_versions(),
        "platform": platform.platform(),
        "torch_threads": torch.get_num_threads(),
    }


def _write_json(path: Path, value: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _prepare_run_dir(cfg: PretrainConfig, run_dir: Path, hashes: list[dict], *, force: bool, resume: bool):
    """Return the checkpoint to resume from, None for a fresh run, or "complete"."""
    if force and resume:
        raise RunFolderError("--force and --resume contradict each other: choose one")
    if resume:
        if not (run_dir / "config.yaml").is_file():
            raise RunFolderError(f"{run_dir}: nothing to resume (no config.yaml); start it without --resume")
        changed = _diff_keys(_comparable(load_pretrain_config(run_dir / "config.yaml")), _comparable(cfg))
        if changed:
            raise RunFolderError(f"{run_dir}: config differs from the interrupted run in {', '.join(changed)}")
        info = read_json(run_dir / "run.json") if (run_dir / "run.json").is_file() else {}
        if info.get("status") == "complete":
            return "complete"
        if info.get("data") and info["data"] != hashes:
            raise RunFolderError(f"{run_dir}: data.inputs changed since the run started (sha256 differs); resuming "
                                 f"would train on two data sets: start a new run (another run_name, or --force)")  # fmt: skip
        return last_complete_checkpoint(run_dir / "checkpoints")
    if run_dir.exists() and any(run_dir.iterdir()):
        if not force:
            raise RunFolderError(f"{run_dir} already exists and is not empty: use --force to overwrite it, "
                                 f"--resume to continue it, or choose another run_name")  # fmt: skip
        if not _is_pretrain_folder(run_dir):
            raise RunFolderError(f"{run_dir} is not a pretraining run folder (no run.json of ours): --force only "
                                 f"replaces runs, never other folders; choose another run_name or output_dir")  # fmt: skip
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(dump_config(cfg), encoding="utf-8")
    return None


def _is_pretrain_folder(folder: Path) -> bool:
    try:
        if (folder / "run.json").is_file():
            info = read_json(folder / "run.json")
            return isinstance(info, dict) and info.get("kind") == "pretrain"
        return (folder / "config.yaml").is_file() and bool(load_pretrain_config(folder / "config.yaml"))
    except ValueError:  # not ours: unreadable, or another program's files
        return False


def _comparable(cfg: PretrainConfig) -> dict:
    """The config as a dict with absolute paths: the same file named from another folder is no change."""
    values = dataclasses.asdict(cfg)

    def absolute(value: str) -> str:
        return str(Path(value).resolve()) if value and Path(value).exists() else value

    values["output_dir"] = absolute(values["output_dir"])
    values["model"]["name_or_path"] = absolute(values["model"]["name_or_path"])
    values["data"]["inputs"] = [absolute(value) for value in values["data"]["inputs"]]
    return values
