#!/usr/bin/env bash
# Set up (scripts/setup.sh) and run the whole test suite offline, one torch thread. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
.venv/bin/python -m pytest "$@"
