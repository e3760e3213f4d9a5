"""Shared test setup: offline, one torch thread, the fixture dataset and one tiny trained run."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # nothing in the tests may reach the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)  # 2-thread torch slows 8-15x on a shared machine; 1 thread barely changes

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
MINI = FIXTURES / "stance_mini"
SHARED = REPO.parent / "shared"


def mini_overrides(output_dir: Path, run_name: str = "mini", epochs: int = 20) -> list[str]:
    """Point configs/tiny.yaml at the fixture dataset and a temporary output folder."""
    return [
        f"data.train={MINI / 'train.jsonl'}",
        f"data.dev={MINI / 'dev.jsonl'}",
        f"data.test={MINI / 'test.jsonl'}",
        f"output_dir={output_dir}",
        f"run_name={run_name}",
        f"training.epochs={epochs}",
        "training.batch_size=8",
    ]


def default_sigint() -> None:
    """preexec_fn for a child that the test stops with Ctrl-C: a child started from a background job inherits
    SIGINT ignored (shells do that to `cmd &`), and Python then never raises KeyboardInterrupt."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def kill_after_first_checkpoint(process, checkpoints: Path, kill) -> None:
    """Wait until `process` (a training) has saved its first checkpoint, let it run into the next epoch, then
    call kill() and reap it."""
    import time

    deadline = time.time() + 300
    while time.time() < deadline and not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
        assert process.poll() is None, "training ended before its first checkpoint"
        time.sleep(0.05)
    time.sleep(0.5)  # into the second epoch
    kill()
    process.wait()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One tiny model trained on the fixture, shared by the tests that only read a finished run."""
    from train.config import load_config
    from train.fit import fit

    out = tmp_path_factory.mktemp("runs")
    return fit(load_config(REPO / "configs" / "tiny.yaml", mini_overrides(out)))


@pytest.fixture(scope="session")
def stance_tiny_run(tmp_path_factory) -> Path:
    """configs/tiny.yaml trained on the real dataset (data/stance; about 30 s on one thread), or the finished
    run named by $STANCE_TEST_RUN."""
    if os.environ.get("STANCE_TEST_RUN"):
        return Path(os.environ["STANCE_TEST_RUN"])
    from train.config import load_config
    from train.fit import fit

    out = tmp_path_factory.mktemp("stance_runs")
    data = REPO / "data" / "stance"
    overrides = [f"data.{split}={data / f'{split}.jsonl'}" for split in ("train", "dev", "test")]
    return fit(load_config(REPO / "configs" / "tiny.yaml", [*overrides, f"output_dir={out}"]))
