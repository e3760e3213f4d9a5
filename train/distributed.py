"""Scaling out under torchrun: this process's rank, the process group, the device, and rank-0-only work.

One code path: a plain `stance ...` is a world of one process and every helper here is then a no-op, so
`torchrun --nproc_per_node N -m train.cli ...` (or `accelerate launch`, which wraps torchrun) runs the
same functions. torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; nothing else is read from the environment.
"""

from __future__ import annotations

import contextlib
import os
from datetime import timedelta

import torch
import torch.distributed as dist

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
# A predict rank may finish its share hours before the slowest one; the final barrier must outwait that.
PREDICT_TIMEOUT = timedelta(hours=24)


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main() -> bool:
    return rank() == 0


def resolve_device(device: str = "auto") -> str:
    """'cpu' or 'cuda' for --device auto|cpu|cuda; asking for a GPU that torch cannot see is an error."""
    if device not in DEVICES:
        raise ValueError(f"--device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"--device cuda: torch {torch.__version__} sees no CUDA GPU; use --device cpu or auto")
    return device


def process_device(device: str) -> torch.device:
    """This process's own device: under torchrun each process on a node takes the GPU of its LOCAL_RANK."""
    return torch.device("cuda", local_rank()) if device == "cuda" else torch.device("cpu")


def autocast_dtype(device: str, precision: str = "auto") -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain fp32. Half precision is CUDA only:
    on CPU it is slower than fp32 for these small encoders, and bf16 matmuls would change the predictions."""
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if precision == "fp32" or (device != "cuda" and precision == "auto"):
        return None
    if device != "cuda":
        raise ValueError(f"--precision {precision} needs --device cuda; on CPU the model runs in fp32")
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float16 if precision == "fp16" else torch.bfloat16


def autocast(device: str, dtype: torch.dtype | None):
    return torch.autocast(device_type=device, dtype=dtype) if dtype is not None else contextlib.nullcontext()


def default_batch_size(device: str) -> int:
    """Pairs per forward pass when --batch-size is not given: a GPU wants wide batches to stay busy; on
    CPU, past ~32 news sentences a batch only adds padding."""
    return 256 if device == "cuda" else 32


def backend_for(device: str) -> str:
    return "nccl" if device == "cuda" else "gloo"


def init(device: str = "cpu", timeout: timedelta | None = None) -> str | None:
    """Join the process group torchrun prepared (nccl on GPU, gloo on CPU) and return its backend; None for a
    single process. accelerate, and so Trainer, reuses a group that is already up."""
    if world_size() == 1:
        return None
    if not dist.is_initialized():
        if device == "cuda":
            torch.cuda.set_device(local_rank())
        dist.init_process_group(backend_for(device), timeout=timeout)
    return dist.get_backend()


def _grouped() -> bool:
    return world_size() > 1 and dist.is_available() and dist.is_initialized()


def barrier() -> None:
    if _grouped():
        dist.barrier()


def on_main(fn, *args, **kwargs):
    """Run fn on rank 0 only and hand its result, or its error, to every rank: a refusal on rank 0 (the
    output folder is not empty) then stops every rank with the same message instead of a hang."""
    if not _grouped():
        return fn(*args, **kwargs)
    box: list = [None]
    if is_main():
        try:
            box[0] = (True, fn(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 - re-raised on every rank just below
            box[0] = (False, err)
    dist.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value


def shutdown() -> None:
    """Leave the process group once the last collective is done: a gloo group still up when the interpreter
    exits can abort the process ("terminate called without an active exception"), seen once in the 2-process
    predict test under load."""
    if _grouped():
        dist.destroy_process_group()


def gather(value) -> list:
    """Every rank's `value`, in rank order (also a barrier)."""
    if not _grouped():
        return [value]
    values: list = [None] * world_size()
    dist.all_gather_object(values, value)
    return values


def per_process_batch(batch_size: int, world: int, key: str = "training.batch_size") -> int:
    """The per-process batch that keeps the global batch at the config's value."""
    if batch_size % world:
        raise ValueError(f"{key}={batch_size} does not divide over {world} processes; the global batch is kept "
                         f"equal to the config's, so set {key} to a multiple of {world}")  # fmt: skip
    return batch_size // world


def trainer_options(batch_size: int, eval_batch_size: int, device: str, precision: str = "auto") -> dict:
    """TrainingArguments for this world: per-process batches, device, DDP backend and mixed precision."""
    world = world_size()
    dtype = autocast_dtype(device, precision)
    return {
        "per_device_train_batch_size": per_process_batch(batch_size, world),
        "per_device_eval_batch_size": max(1, eval_batch_size // world),  # evaluation only pads differently
        "use_cpu": device == "cpu",
        "ddp_backend": backend_for(device) if world > 1 else None,
        "ddp_find_unused_parameters": False if world > 1 else None,  # every weight gets a gradient: skip the scan
        "bf16": dtype == torch.bfloat16,
        "fp16": dtype == torch.float16,
    }


def describe(device: str, precision: str = "auto") -> dict:
    """What run.json records about where a run trained."""
    dtype = autocast_dtype(device, precision)
    return {
        "world_size": world_size(),
        "backend": backend_for(device) if world_size() > 1 else None,
        "device": device,
        "precision": str(dtype).removeprefix("torch.") if dtype else "fp32",
    }
