"""Render evaluation and comparison results as Markdown and self-contained HTML with plots; formatting only."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any, Sequence

CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child, td.text, th.text { text-align: left; }
td.text { max-width: 40em; }
img { max-width: 100%; } .plots { display: flex; flex-wrap: wrap; gap: 1em; }
"""


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def write_reports(metrics: dict, out_dir: Path) -> None:
    (out_dir / "report.md").write_text(evaluation_markdown(metrics), encoding="utf-8")
    (out_dir / "report.html").write_text(evaluation_html(metrics), encoding="utf-8")


# --- one evaluation -------------------------------------------------------------------------------------------


def _evaluation_tables(m: dict) -> list[tuple[str, list[str], list[list[Any]]]]:
    """(title, header, rows) for every table of an evaluation report, shared by Markdown and HTML."""
    labels = m["labels"]
    summary = [["examples", m["n"]], ["accuracy", m["accuracy"]], ["macro-F1", m["macro_f1"]],
               ["F_avg (pro_ukraine, pro_russia)", m["f_avg"]], ["ECE", m["calibration"]["ece"]]]  # fmt: skip
    classes = [[name, c["precision"], c["recall"], c["f1"], c["support"]] for name, c in m["per_class"].items()]
    countries = [[name, c["support"], c["accuracy"], c["macro_f1"]] for name, c in m["per_country"].items()]
    confusion = [[f"gold {name}", *row] for name, row in zip(labels, m["confusion"])]
    bins = [[f"({b['lower']:.1f}, {b['upper']:.1f}]", b["count"], b["confidence"], b["accuracy"]]
            for b in m["calibration"]["bins"]]  # fmt: skip
    errors = [[e["text"], e["country"], e["gold"], e["predicted"], e["confidence"]] for e in m["confident_errors"]]
    if m.get("not_hard"):
        summary += [[f"macro-F1 without the {m['not_hard']['n_hard']} pairs marked hard", m["not_hard"]["macro_f1"]]]
    swap = m.get("swap") or {}
    if swap.get("n_copies"):
        summary += [["swap consistency", swap["consistency"]], ["swap macro-F1", swap["macro_f1"]]]
    tables = [
        ("Summary", ["metric", "value"], summary),
        ("Per class", ["label", "precision", "recall", "F1", "support"], classes),
        ("Per country", ["country", "support", "accuracy", "macro-F1"], countries),
        ("Confusion matrix (rows gold, columns predicted)", ["", *labels], confusion),
        ("Calibration bins", ["confidence bin", "count", "mean confidence", "accuracy"], bins),
        ("Most confident errors", ["sentence", "country", "gold", "predicted", "confidence"], errors),
    ]
    if swap.get("n_copies"):
        numbers = [["third-country examples swapped", swap["n_originals"]], ["copies", swap["n_copies"]],
                   ["consistency (copy predicted as its original)", swap["consistency"]],
                   ["macro-F1 of the copies", swap["macro_f1"]],
                   ["macro-F1 of the same examples unswapped", swap["original_macro_f1"]]]  # fmt: skip
        flips = [[f["swapped_text"], f"{f['from']} → {f['to']}", f["gold"], f["original"], f["swapped"], f["confidence"]]
                 for f in swap["worst_flips"]]  # fmt: skip
        tables += [
            (f"Country-swap invariance ({swap['k']} copies per third-country example, seed {swap['seed']})",
             ["measure", "value"], numbers),
            ("Worst flips (the answer changed with the name alone)",
             ["swapped sentence", "swap", "gold", "original predicted", "swapped predicted", "confidence"], flips),
        ]  # fmt: skip
    return tables


def _title(m: dict) -> str:
    return f"Evaluation of {m['run']} on {m['name']}"


def evaluation_markdown(m: dict) -> str:
    data = f"Data: `{m['data']['path']}` (sha256 `{m['data']['sha256']}`, {m['n']} examples)"
    lines = [f"# {_title(m)}", "", data, ""]
    for title, header, rows in _evaluation_tables(m):
        lines += [f"## {title}", "", *markdown_table(header, rows), ""]
    return "\n".join(lines)


def evaluation_html(m: dict) -> str:
    labels = m["labels"]
    plots = [
        ("Confusion matrix", confusion_png(m["confusion"], labels)),
        ("Reliability diagram", reliability_png(m["calibration"])),
        ("F1 per class", bars_png({m["name"]: [m["per_class"][name]["f1"] for name in labels]}, labels, "F1")),
    ]
    body = [f"<h1>{html.escape(_title(m))}</h1>",
            f"<p>Data: <code>{html.escape(m['data']['path'])}</code> (sha256 <code>{m['data']['sha256']}</code>, "
            f"{m['n']} examples)</p>", plots_html(plots)]  # fmt: skip
    for title, header, rows in _evaluation_tables(m):
        body += [f"<h2>{html.escape(title)}</h2>", html_table(header, rows)]
    return page(_title(m), body)


# --- article verdicts ----------------------------------------------------------------------------------------


def _article_tables(m: dict) -> list[tuple[str, list[str], list[list[Any]]]]:
    labels = m["labels"]
    summary = [["(article, country) pairs in gold", m["n"]], ["accuracy", m["accuracy"]], ["macro-F1", m["macro_f1"]],
               ["gold countries never found in their article", m["not_found"]],
               ["min_evidence (verdict threshold)", m["min_evidence"]]]  # fmt: skip
    confusion = [[f"gold {name}", *row] for name, row in zip(labels, m["confusion"])]
    sweep = [[row["min_evidence"], row["accuracy"], row["macro_f1"]] for row in m["sweep"]]
    wrong = [[w["article"], w["country"], w["gold"], w["predicted"],
              " | ".join(f"{e['sentence']} ({e['label']} {e['p']:.2f})" for e in w["evidence"]) or "(not found)"]
             for w in m["wrong"]]  # fmt: skip
    return [
        ("Summary", ["measure", "value"], summary),
        ("Confusion matrix (rows gold, columns predicted)", ["", *labels], confusion),
        ("Threshold sweep (same sentence predictions, verdicts re-aggregated)", ["min_evidence", "accuracy", "macro-F1"],
         sweep),
        ("Wrong verdicts with their evidence", ["article", "country", "gold", "predicted", "evidence"], wrong),
    ]  # fmt: skip


def write_article_reports(m: dict, out_dir: Path) -> None:
    title = f"Article verdicts of {m['run']} on {m['articles']}"
    tables = _article_tables(m)
    lines = [f"# {title}", ""]
    for name, header, rows in tables:
        lines += [f"## {name}", "", *markdown_table(header, rows), ""]
    (out_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    body = [f"<h1>{html.escape(title)}</h1>", plots_html([("Confusion matrix", confusion_png(m["confusion"], m["labels"]))])]
    for name, header, rows in tables:
        body += [f"<h2>{html.escape(name)}</h2>", html_table(header, rows)]
    (out_dir / "report.html").write_text(page(title, body), encoding="utf-8")


# --- building blocks ------------------------------------------------------------------------------------------


def markdown_table(header: Sequence[str], rows: list[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        # Quoted sentences are news text: escape HTML, as report.html does, so a viewer shows it and runs nothing.
        return html.escape(fmt(value), quote=False).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def html_table(header: Sequence[str], rows: list[list[Any]]) -> str:
    def cell(tag: str, value: Any) -> str:
        klass = ' class="text"' if isinstance(value, str) and len(value) > 20 else ""
        return f"<{tag}{klass}>{html.escape(fmt(value))}</{tag}>"

    head = "<tr>" + "".join(cell("th", h) for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows)
    return f"<table><thead>{head}</thead><tbody>{body}</tbody></table>"


def plots_html(plots: list[tuple[str, str]]) -> str:
    images = "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, data in plots
    )
    return f'<div class="plots">{images}</div>'


def page(title: str, body: list[str]) -> str:
    # Everything inline (CSS, base64 images): the file can be mailed or opened from an archive on its own.
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


# --- plots: the object-oriented matplotlib API, so no pyplot global state and no GUI backend is touched --------


def _png(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def confusion_png(confusion: list[list[int]], labels: Sequence[str]) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8, 4.2))
    ax = fig.add_subplot()
    ax.imshow(confusion, cmap="Blues")
    top = max((max(row) for row in confusion), default=0)
    for i, row in enumerate(confusion):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    return _png(fig)


def reliability_png(calibration: dict) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.4, 4.2))
    ax = fig.add_subplot()
    width = 1 / calibration["n_bins"]
    filled = [b for b in calibration["bins"] if b["count"]]
    ax.bar([b["lower"] for b in filled], [b["accuracy"] for b in filled], width=width, align="edge",
           edgecolor="black", label="accuracy")  # fmt: skip
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ECE {calibration['ece']:.4f}")
    ax.legend(loc="upper left")
    return _png(fig)


def bars_png(series: dict[str, list[float]], labels: Sequence[str], ylabel: str) -> str:
    """Grouped bars: one group per label, one bar per series (a run)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(max(4.8, 1.2 * len(labels) * max(1, len(series)) ** 0.5), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(series))
    for k, (name, values) in enumerate(series.items()):
        ax.bar([i + k * width for i in range(len(labels))], values, width=width, label=name)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(labels))], labels, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    if len(series) > 1:  # headroom above the bars, so the legend never hides one
        ax.set_ylim(0, 1.2)
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.legend(fontsize="small", loc="upper center", ncols=min(4, len(series)))
    else:
        ax.set_ylim(0, 1)
    return _png(fig)


# --- a comparison of runs -------------------------------------------------------------------------------------


def _ms(stat: dict, digits: int = 4) -> str:
    """A value over seeds: plain for a single run, mean ± std for a seed group."""
    if stat["n"] == 1:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _delta(stat: dict, base: dict) -> str:
    return f"{stat['mean'] - base['mean']:+.4f}"


def _comparison_tables(r: dict) -> list[tuple[str, list[str], list[list[Any]]]]:
    entries = r["entries"]
    names = [e["name"] for e in entries]
    first = entries[0]
    runs = [[e["name"], "seed group" if e["group"] else "run", ", ".join(e["runs"]), e["n"]] for e in entries]
    summary = []
    for key in first["summary"]:
        if not all(key in e["summary"] for e in entries):  # swap figures of runs evaluated before they existed
            continue
        summary.append([key, *(_ms(e["summary"][key]) for e in entries),
                        *(_delta(e["summary"][key], first["summary"][key]) for e in entries[1:])])  # fmt: skip
    delta_head = [f"Δ {name}" for name in names[1:]]
    classes = []
    for label in r["labels"]:
        cells = [e["per_class"][label]["f1"] for e in entries]
        classes.append([label, *(_ms(c) for c in cells), *(_delta(c, cells[0]) for c in cells[1:])])
    countries = []
    for country, base in first["per_country"].items():
        cells = [e["per_country"].get(country, {}).get("macro_f1") for e in entries]
        countries.append([country, base["support"], *(_ms(c) if c else "–" for c in cells),
                          *(_delta(c, cells[0]) if c else "–" for c in cells[1:])])  # fmt: skip
    config = [[key, *(json_cell(v) for v in values)] for key, values in r["config_diff"].items()]
    tests = [[f"{t['other']} − {t['first']}", f"{t['delta']:+.4f}", f"[{t['ci_low']:+.4f}, {t['ci_high']:+.4f}]",
              t["p_value"], t["n_resamples"]] for t in r["bootstrap"]]  # fmt: skip
    return [
        ("Runs", ["name", "kind", "run folders", "examples"], runs),
        ("Metrics", ["metric", *names, *delta_head], summary),
        ("F1 per class", ["label", *names, *delta_head], classes),
        ("Macro-F1 per country", ["country", "support", *names, *delta_head], countries),
        ("Config differences", ["key", *names], config or [["(none)", *("" for _ in names)]]),
        ("Paired bootstrap of the macro-F1 difference (same examples, fixed seed)",
         ["pair", "Δ macro-F1", "95% CI", "p-value", "resamples"], tests),
    ]  # fmt: skip


def json_cell(value: Any) -> str:
    return "(unset)" if value is None else str(value)


def _comparison_title(r: dict) -> str:
    return f"Comparison on {r['eval']}: " + " vs ".join(e["name"] for e in r["entries"])


def comparison_markdown(r: dict) -> str:
    lines = [f"# {_comparison_title(r)}", "",
             f"Data: `{r['data']['path']}` (sha256 `{r['data']['sha256']}`, {r['data']['n']} examples). "
             "Seed groups show mean ± std over their runs; Δ is against the first column.", ""]  # fmt: skip
    for title, header, rows in _comparison_tables(r):
        lines += [f"## {title}", "", *markdown_table(header, rows), ""]
    return "\n".join(lines)


def comparison_html(r: dict) -> str:
    labels = r["labels"]
    series = {e["name"]: [e["per_class"][name]["f1"]["mean"] for name in labels] for e in r["entries"]}
    plots = [("F1 per class", bars_png(series, labels, "F1"))]
    if r["bootstrap"]:
        plots.append(("Macro-F1 difference against the first run, 95% CI", delta_png(r["bootstrap"])))
    body = [f"<h1>{html.escape(_comparison_title(r))}</h1>",
            f"<p>Data: <code>{html.escape(r['data']['path'])}</code> (sha256 <code>{r['data']['sha256']}</code>, "
            f"{r['data']['n']} examples). Seed groups show mean ± std over their runs; Δ is against the first "
            "column.</p>", plots_html(plots)]  # fmt: skip
    for title, header, rows in _comparison_tables(r):
        body += [f"<h2>{html.escape(title)}</h2>", html_table(header, rows)]
    return page(_comparison_title(r), body)


def delta_png(tests: list[dict]) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.2, 0.6 + 0.5 * len(tests)))
    ax = fig.add_subplot()
    for y, t in enumerate(tests):
        ax.errorbar(t["delta"], y, xerr=[[t["delta"] - t["ci_low"]], [t["ci_high"] - t["delta"]]], fmt="o", capsize=4)
    ax.axvline(0, color="grey", linestyle="--")
    ax.set_yticks(range(len(tests)), [f"{t['other']} − {t['first']}" for t in tests])
    ax.set_ylim(-0.5, len(tests) - 0.5)
    ax.set_xlabel("Δ macro-F1")
    return _png(fig)
