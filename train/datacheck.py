"""Check and describe the stance dataset: validate splits against the gazetteer, count and re-split by story."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .data import LABELS, DataError, read_jsonl
from .mentions import Gazetteer, load_gazetteer

DATASET_FIELDS = ("id", "text", "country", "mention", "label", "story_id")
# Two sentences in different splits this similar (cosine of character 3–5-gram TF-IDF) are one sentence
# lightly edited: a model could score by memory. Measured on our data, distinct sentences stay below 0.8.
NEAR_DUPLICATE_COSINE = 0.9
NAME_KINDS = ("name", "alias")  # the other kinds (place, person) are the indirect mentions we count


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    rows: dict[str, list[dict]] = field(default_factory=dict)  # split → examples

    @property
    def ok(self) -> bool:
        return not self.errors


def validate(split_paths: dict[str, str | Path], gazetteer: str | Path) -> Report:
    """Collect every problem (not just the first) with file:line; an empty `errors` means the data is usable."""
    report = Report()
    finder = load_gazetteer(gazetteer)
    seen_ids: dict[str, str] = {}
    story_split: dict[str, str] = {}
    for split, path in split_paths.items():
        try:
            rows = read_jsonl(path)
        except DataError as err:
            report.errors.append(str(err))
            continue
        report.rows[split] = rows
        pairs = set()
        with Path(path).open(encoding="utf-8") as handle:  # read_jsonl skips blank lines: count them back in
            lines = [number for number, text in enumerate(handle, start=1) if text.strip()]
        for line, row in zip(lines, rows):
            where = f"{path}:{line}"
            missing = [key for key in DATASET_FIELDS if not isinstance(row.get(key), str) or not row[key]]
            if missing:
                report.errors.append(f"{where}: missing field(s) {', '.join(missing)}")
                continue
            if row["id"] in seen_ids:
                report.errors.append(f"{where}: id {row['id']!r} already used in {seen_ids[row['id']]}")
            seen_ids[row["id"]] = where
            if row["country"] not in finder.kinds:
                report.errors.append(f"{where}: country {row['country']!r} is not a canonical name in {gazetteer}")
            occurs = row["mention"] in row["text"]
            if not occurs:
                report.errors.append(f"{where}: mention {row['mention']!r} does not occur in the text")
            resolved = finder.surface.get(row["mention"])
            if resolved is None:
                report.errors.append(f"{where}: mention {row['mention']!r} is not in the gazetteer")
            elif resolved != row["country"]:
                report.errors.append(f"{where}: mention {row['mention']!r} resolves to {resolved!r}, not {row['country']!r}")
            elif occurs and not any(m.country == resolved and row["mention"] in m.text for m in finder.find(row["text"])):
                # the mention finder `stance predict` uses must see it too: not inside "Hiến chương LHQ"
                report.errors.append(f"{where}: mention {row['mention']!r} is not found as {resolved!r} in the text "
                                     "(part of a longer phrase the gazetteer lists?)")  # fmt: skip
            if (row["text"], row["country"]) in pairs:
                report.errors.append(f"{where}: duplicate example ({row['country']!r} in the same sentence)")
            pairs.add((row["text"], row["country"]))
            other = story_split.setdefault(row["story_id"], split)
            if other != split:
                report.errors.append(f"{where}: story {row['story_id']!r} also appears in split {other!r}")
    report.errors += _cross_split_duplicates(report.rows)
    return report


def _cross_split_duplicates(rows: dict[str, list[dict]]) -> list[str]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    sentences = {split: sorted({row["text"] for row in part}) for split, part in rows.items()}
    names = list(sentences)
    if len(names) < 2:
        return []
    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), lowercase=True)
    vectorizer.fit([text for split in names for text in sentences[split]])
    errors = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            similarity = vectorizer.transform(sentences[first]) @ vectorizer.transform(sentences[second]).T
            for a, b in zip(*similarity.multiply(similarity >= NEAR_DUPLICATE_COSINE).nonzero()):
                errors.append(
                    f"near-duplicate sentences across splits {first}/{second} (cosine "
                    f"{similarity[a, b]:.2f}): {sentences[first][a]!r} ~ {sentences[second][b]!r}"
                )
    return errors


def stats(rows: dict[str, list[dict]], gazetteer: Gazetteer) -> dict:
    """The numbers the data card reports: sizes, label shares, spread over countries and mention kinds."""
    every = [row for part in rows.values() for row in part]
    by_sentence = defaultdict(set)
    for row in every:
        by_sentence[row["text"]].add(row["country"])
    labels = Counter(row["label"] for row in every)
    kinds = Counter(gazetteer.form_kinds.get(row["mention"], "unknown") for row in every)
    table = defaultdict(Counter)  # (country) → Counter of (split, label)
    for split, part in rows.items():
        for row in part:
            table[row["country"]][(split, row["label"])] += 1
    return {
        "examples": len(every),
        "sentences": len(by_sentence),
        "stories": len({row["story_id"] for row in every}),
        "examples_per_split": {split: len(part) for split, part in rows.items()},
        "labels": {label: labels[label] for label in LABELS},
        "label_share": {label: round(labels[label] / max(1, len(every)), 3) for label in LABELS},
        "countries_besides_belligerents": len({row["country"] for row in every} - {"Nga", "Ukraine"}),
        "multi_country_sentence_share": round(sum(len(c) > 1 for c in by_sentence.values()) / max(1, len(by_sentence)), 3),
        "indirect_mention_share": round(sum(n for k, n in kinds.items() if k not in NAME_KINDS) / max(1, len(every)), 3),
        "mention_kinds": dict(kinds),
        "table": {country: {f"{s}/{l}": n for (s, l), n in sorted(counts.items())} for country, counts in table.items()},
    }


def stats_markdown(numbers: dict, splits: list[str]) -> str:
    """The label × country × split table as Markdown, most frequent countries first."""
    lines = [
        f"examples {numbers['examples']}, sentences {numbers['sentences']}, stories {numbers['stories']}, "
        f"countries besides Nga/Ukraine {numbers['countries_besides_belligerents']}",
        "label share: " + ", ".join(f"{k} {v:.1%}" for k, v in numbers["label_share"].items()),
        f"sentences with 2+ countries {numbers['multi_country_sentence_share']:.1%}; "
        f"mentions by leader/official/capital/institution {numbers['indirect_mention_share']:.1%}",
        "examples per split: " + ", ".join(f"{k} {v}" for k, v in numbers["examples_per_split"].items()),
        "",
    ]
    header = ["country"] + [f"{split} {label}" for split in splits for label in LABELS] + ["total"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    ranked = sorted(numbers["table"].items(), key=lambda item: -sum(item[1].values()))
    for country, cells in ranked:
        counts = [cells.get(f"{split}/{label}", 0) for split in splits for label in LABELS]
        lines.append("| " + " | ".join([country, *map(str, counts), str(sum(counts))]) + " |")
    return "\n".join(lines) + "\n"


def split_by_story(
    rows: list[dict], shares=(0.7, 0.15, 0.15), names=("train", "dev", "test"), existing: dict | None = None
) -> dict[str, list[dict]]:
    """Assign whole stories to splits, in a stable hash order, filling each split to its share of examples.

    With `existing` (split name → rows already placed), those rows stay where they are and only the new
    stories are placed, each to the split furthest below its share: adding stories never moves old ones."""
    out: dict[str, list[dict]] = {name: list((existing or {}).get(name, [])) for name in names}
    placed = {row["story_id"] for part in out.values() for row in part}
    stories: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        stories[row["story_id"]].append(row)
    clash = sorted(placed & set(stories))
    if clash:
        raise DataError(f"stories already in the splits: {', '.join(clash[:5])} (give new story ids)")
    order = sorted(stories, key=lambda sid: hashlib.sha256(sid.encode("utf-8")).hexdigest())
    total = len(rows) + sum(len(part) for part in out.values())
    targets = [share * total for share in shares]
    for sid in order:
        # the split furthest below its target takes the story
        name = max(names, key=lambda n: targets[names.index(n)] - len(out[n]))
        out[name].extend(stories[sid])
    return out


def agreement_sample(rows: list[dict], share: float = 0.1, seed: int = 13) -> list[dict]:
    """A random `share` of the examples, without labels: what the second annotator is given."""
    import random

    chosen = random.Random(seed).sample(rows, round(share * len(rows)))
    return [{key: row[key] for key in ("id", "text", "country", "mention")} for row in sorted(chosen, key=lambda r: r["id"])]


def agreement(gold: list[dict], second: list[dict]) -> dict:
    """Cohen's kappa and raw agreement between the dataset's labels and a second, blind annotation."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    by_id = {row["id"]: row for row in gold}
    # Examples later left out of the data (undecidable under a sharper guideline) are reported, not scored;
    # a file that shares no ids with the data is the wrong file.
    missing = [row["id"] for row in second if row["id"] not in by_id]
    second = [row for row in second if row["id"] in by_id]
    if not second:
        raise DataError(f"second annotation shares no ids with the dataset (first: {', '.join(missing[:5])})")
    first = [by_id[row["id"]]["label"] for row in second]
    other = [row["label"] for row in second]
    return {
        "examples": len(second),
        "not_in_data": missing,
        "cohen_kappa": round(float(cohen_kappa_score(first, other, labels=list(LABELS))), 4),
        "raw_agreement": round(sum(a == b for a, b in zip(first, other)) / max(1, len(second)), 4),
        "confusion_rows_dataset_cols_second": confusion_matrix(first, other, labels=list(LABELS)).tolist(),
        "disagreements": [
            {**by_id[row["id"]], "second_label": row["label"]} for row, a in zip(second, first) if a != row["label"]
        ],
    }
