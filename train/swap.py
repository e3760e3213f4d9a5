"""Country swaps: copies of an example whose third-country target is replaced by another country, label kept.

LABELS.md defines a stance by what the sentence says the country did, so replacing "Italy" by "Brazil" in
"Italy says sanctions were never the solution" leaves the label unchanged. A model that changes its answer
reads names, not acts. `swap_copies` makes those copies (a CheckList-style invariance test; the same copies
serve as counterfactual training data, `data.augment.swap_targets`):
- only third countries are swapped: a belligerent's label depends on who it is (LABELS.md), so Nga and
  Ukraine are never replaced, and never used as replacements;
- like for like: a name or alias becomes the new country's name, a capital or seat its first listed place, a
  person one of its people (the one with the same title when it has one, else its leader), and the title
  in front of a person ("Tổng thống Pháp Emmanuel Macron") becomes the new person's title;
- the replacement is a country of the same kind (country or bloc) that the sentence does not already name,
  and every copy is checked: the gazetteer must find the new country where it found the old one, and every
  other country exactly as before;
- copies are seeded per example (the same example gets the same copies whatever else is in the data).
"""

from __future__ import annotations

import random
from typing import Iterable

from .mentions import BELLIGERENTS, Gazetteer

LEADER_TITLES = ("Tổng thống", "Thủ tướng", "Chủ tịch", "Quốc vương", "Nhà vua", "Giáo hoàng", "Tổng thư ký", "Thủ lĩnh")
SWAP_KEY = "swap_of"  # a copy's field naming the example it was made from


def is_third_country(country: str) -> bool:
    return country not in BELLIGERENTS


def swappable(gazetteer: Gazetteer) -> list[str]:
    """Countries and blocs a target may be swapped to: those the gazetteer lists people for (the states that
    appear in the news), never a belligerent."""
    return sorted(name for name, people in gazetteer.people.items() if people and is_third_country(name))


def _person_for(gazetteer: Gazetteer, country: str, title: str) -> tuple[str, str] | None:
    people = gazetteer.people.get(country) or []
    for wanted in (lambda t: t == title, lambda t: t.startswith(LEADER_TITLES)):
        for name, person_title in people:
            if title and wanted(person_title):
                return name, person_title
    for name, person_title in people:
        if person_title.startswith(LEADER_TITLES):
            return name, person_title
    return people[0] if people else None


def _matches(text: str, country: str, gazetteer: Gazetteer) -> list:
    return [m for m in gazetteer.pattern.finditer(text) if gazetteer.surface.get(m.group("name")) == country]


def swap_text(text: str, country: str, new: str, gazetteer: Gazetteer) -> tuple[str, str] | None:
    """`text` with every mention of `country` replaced like for like by `new`, and the first new surface;
    None when `new` lacks a form the sentence needs or the result does not read as `new` to the gazetteer."""
    matches = _matches(text, country, gazetteer)
    if not matches:
        return None
    pieces, surfaces, end = [], [], len(text)
    index = len(matches) - 1
    while index >= 0:  # right to left, so earlier offsets stay valid
        match = matches[index]
        name, title = match.group("name"), match.group("title")
        kind = gazetteer.form_kinds.get(name, "name")
        start, stop = match.start(), match.end()
        if kind == "person":
            person = _person_for(gazetteer, new, gazetteer.person_titles.get(name, ""))
            if person is None:
                return None
            replacement = person[0]
            previous = matches[index - 1] if index else None
            if title:  # "Ngoại trưởng Lavrov" → "Ngoại trưởng Vương Nghị"
                replacement = f"{person[1] or title} {person[0]}"
            elif previous and previous.group("title") and not text[previous.end() : start].strip():
                # "Tổng thống Pháp Emmanuel Macron": the title belongs to the person; rewrite the pair at once
                replacement = f"{person[1] or previous.group('title')} {new} {person[0]}"
                start = previous.start()
                index -= 1
        elif kind == "place":
            places = gazetteer.places.get(new) or []
            if not places:
                return None
            replacement = (f"{title} " if title else "") + places[0]
        else:
            replacement = (f"{title} " if title else "") + new
        pieces.append(replacement + text[stop:end])
        surfaces.append(replacement)
        end = start
        index -= 1
    swapped = text[:end] + "".join(reversed(pieces))
    # Exactly one country changed: a new title may name a state of its own ("Tổng thống Chile" for a UN envoy)
    if set(gazetteer.countries(swapped)) != (set(gazetteer.countries(text)) - {country}) | {new}:
        return None
    return swapped, surfaces[-1]


def swap_copies(row: dict, gazetteer: Gazetteer, k: int = 3, seed: int = 0,
                candidates: Iterable[str] | None = None) -> list[dict]:  # fmt: skip
    """Up to k copies of `row` (id, text, country, label, ...) with its third-country target replaced; [] for a
    belligerent target or a target the gazetteer does not find in the text."""
    country, text = row["country"], row["text"]
    if not is_third_country(country) or country not in gazetteer.kinds:
        return []
    present = set(gazetteer.countries(text))
    pool = [
        name for name in (candidates if candidates is not None else swappable(gazetteer))
        if name not in present and name != country and gazetteer.kinds.get(name) == gazetteer.kinds[country]
    ]  # fmt: skip
    random.Random(f"{seed}|{row.get('id', '')}|{country}|{text}").shuffle(pool)
    copies = []
    for new in pool:
        result = swap_text(text, country, new, gazetteer)
        if result is None:
            continue
        swapped, surface = result
        copies.append({**row, "id": f"{row.get('id', '')}~{new}", "text": swapped, "country": new,
                       "mention": surface, SWAP_KEY: row.get("id", ""), "swapped_from": country})  # fmt: skip
        if len(copies) == k:
            break
    return copies


def swap_set(rows: list[dict], gazetteer: Gazetteer, k: int = 3, seed: int = 0) -> list[dict]:
    """Every swap copy of every row, in row order."""
    candidates = swappable(gazetteer)
    return [copy for row in rows for copy in swap_copies(row, gazetteer, k, seed, candidates)]


def augment_with_swaps(rows: list[dict], gazetteer: Gazetteer, probability: float, seed: int) -> list[dict]:
    """Training rows where each third-country example is, with `probability`, replaced by one swap copy.

    Replaced rather than added, so training costs the same; one draw per eligible row from a generator seeded
    with `seed`, so the same seed and data give the same rows. A row with no valid copy stays as it is."""
    if probability <= 0:
        return rows
    draw, candidates = random.Random(seed), swappable(gazetteer)
    out = []
    for row in rows:
        copies = []
        if is_third_country(row["country"]) and draw.random() < probability:
            copies = swap_copies(row, gazetteer, 1, seed, candidates)
        out.append(copies[0] if copies else row)
    return out


def uses_gazetteer(cfg) -> bool:
    """Whether a transformer run needs its own copy of the gazetteer (to mark, mask or swap targets)."""
    model = cfg.model
    return bool(model.gazetteer) and (model.mark_target or model.mask_target or cfg.data.augment.swap_targets > 0)


def swap_augmenter(cfg, gazetteer: Gazetteer | None):
    """The `augment` hook of data.load_splits for a run config, or None when the run does not augment."""
    probability = cfg.data.augment.swap_targets
    if probability <= 0 or gazetteer is None:
        return None
    return lambda rows: augment_with_swaps(rows, gazetteer, probability, cfg.training.seed)
