"""The HTML reports are self-contained and render in a real browser (headless Chromium; skipped without one)."""

import base64
import re
import shutil
import subprocess

import pytest

from train.compare import compare, write_comparison
from train.evaluation import evaluate_run

from .test_compare import better_rows, make_run
from .test_evaluation import FixedPredictor, write_eight

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
# Checks, once the page has loaded, that every image decoded to real pixels; added to a copy of the page only.
PROBE = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  document.body.dataset.images = images.length;
  document.body.dataset.decoded = images.filter((img) => img.complete && img.naturalWidth > 0).length;
  document.body.dataset.tables = document.querySelectorAll("table").length;
});</script>"""


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    data = root / "eight.jsonl"
    rows = write_eight(data)
    evaluation = evaluate_run(root / "solo", data=data, predictor=FixedPredictor(rows)) / "report.html"
    a = make_run(root, "a", data, rows)
    b = make_run(root, "b", data, better_rows())
    comparison = root / "compare.html"
    write_comparison(compare([a, b], eval_name="eight"), html_path=comparison)
    return {"evaluation": (evaluation, 3, 6), "comparison": (comparison, 2, 6)}


@pytest.mark.parametrize("kind", ["evaluation", "comparison"])
def test_page_is_self_contained(pages, kind):
    path, images, tables = pages[kind]
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    # nothing is loaded from elsewhere: every src/href is inline data
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert len(links) == images and all(link.startswith("data:image/png;base64,") for link in links)
    for link in links:
        assert base64.b64decode(link.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert page.count("<table>") == tables


def chromium(*args, user_data_dir):
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={user_data_dir}", "--enable-logging=stderr", "--v=0"]  # fmt: skip
    return subprocess.run([BROWSER, *flags, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install -y chromium)")
@pytest.mark.parametrize("kind", ["evaluation", "comparison"])
def test_page_renders_in_headless_chromium(pages, kind, tmp_path):
    path, images, tables = pages[kind]
    probe = tmp_path / "probe.html"
    probe.write_text(path.read_text(encoding="utf-8").replace("</body>", PROBE + "\n</body>"), encoding="utf-8")
    done = chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri(), user_data_dir=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-3000:]
    dom = done.stdout
    assert f'data-images="{images}"' in dom and f'data-decoded="{images}"' in dom, dom[:500]
    assert f'data-tables="{tables}"' in dom
    assert "macro" in dom and "<td>0.6667</td>" in dom
    assert "Uncaught" not in done.stderr, "a script error in the page"

    shot = tmp_path / "page.png"
    profile = tmp_path / "profile"
    done = chromium("--window-size=1200,1600", f"--screenshot={shot}", path.as_uri(), user_data_dir=profile)
    assert done.returncode == 0 and shot.stat().st_size > 20_000, done.stderr[-3000:]


def test_markdown_report_escapes_html_in_quoted_sentences_like_the_html_report():
    from train.evaluation import compute_metrics
    from train.report import evaluation_html, evaluation_markdown

    from .test_evaluation import eight_rows

    rows = eight_rows()
    for row in rows:
        row["text"] = f'<img src=x onerror="alert(1)"> {row["text"]} & | <b>'
    metrics = {"run": "r", "name": "eight", "data": {"path": "eight.jsonl", "sha256": "0" * 64}, **compute_metrics(rows)}
    report = evaluation_markdown(metrics)
    assert "&lt;img src=x onerror=\"alert(1)\"&gt; câu số 5 &amp; \\| &lt;b&gt;" in report
    assert "<img" not in report and "<b>" not in report
    assert "<img" not in evaluation_html(metrics).replace('<img alt="', "")
