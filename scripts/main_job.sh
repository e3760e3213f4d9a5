#!/usr/bin/env bash
# Set up, then the main job on the embedded offline default: train → evaluate → predict on sample articles.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
.venv/bin/stance train configs/tiny.yaml --force "$@"
