#!/usr/bin/env bash
# Create .venv and install ViStance with its extras. torch is pinned in the SAME pip command as the package:
# an unpinned torch (or a range resolved alone) pulls a multi-GB CUDA build; 2.13.0 is a CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0" -e ".[test]"
