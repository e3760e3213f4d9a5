"""The gazetteer: find country mentions (names, capitals, institutions, leaders) in a sentence."""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

# The package's own gazetteer, next to the package (data/ in the repository).
DEFAULT_GAZETTEER = Path(__file__).resolve().parent.parent / "data" / "countries.yaml"

# Titles and state bodies that, right before a country name, make one mention with it ("Tổng thống Pháp",
# "Bộ Ngoại giao Nga"). Roles listed for people in the gazetteer are added to these.
TITLES = (
    "Tổng thống", "Phó Tổng thống", "Thủ tướng", "Phó Thủ tướng", "Ngoại trưởng", "Thủ tướng lâm thời",
    "Bộ trưởng", "Bộ trưởng Quốc phòng", "Bộ trưởng Ngoại giao", "Bộ trưởng Tài chính", "Bộ Ngoại giao",
    "Bộ Quốc phòng", "Bộ Tài chính", "Chính phủ", "chính phủ", "Quốc hội", "Quân đội", "quân đội", "Đại sứ",
    "Đại sứ quán", "Chủ tịch", "Chủ tịch nước", "Nhà vua", "Quốc vương", "Tổng Bí thư", "Hạ viện", "Thượng viện",
    "Người phát ngôn Bộ Ngoại giao", "người phát ngôn Bộ Ngoại giao", "phía", "Phía", "lực lượng", "Lực lượng",
    "nhà lãnh đạo", "Nhà lãnh đạo", "giới chức", "Giới chức", "Tổng thư ký", "Đặc phái viên", "Cơ quan",
)  # fmt: skip


class GazetteerError(ValueError):
    """A gazetteer file that cannot be used; the message names the file and the entry or key."""


@dataclass(frozen=True)
class Mention:
    country: str  # the entry's canonical name, e.g. "Pháp"
    text: str  # the surface form as written, e.g. "Tổng thống Pháp Emmanuel Macron"
    start: int
    end: int


@dataclass(frozen=True)
class Gazetteer:
    """Surface form → canonical name (None for a `not_countries` phrase) and the compiled matcher."""

    surface: dict[str, str | None]
    kinds: dict[str, str]  # canonical name → "country" | "bloc"
    pattern: re.Pattern
    form_kinds: dict[str, str]  # surface form → "name" | "alias" | "place" | "person"
    places: dict[str, list[str]] = field(default_factory=dict)  # canonical name → capitals and seats, as listed
    # canonical name → (person's name, current title) as listed, e.g. ("Emmanuel Macron", "Tổng thống")
    people: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    person_titles: dict[str, str] = field(default_factory=dict)  # person surface form → that person's title

    def find(self, text: str) -> list[Mention]:
        """All mentions, left to right. At each position the longest form wins (so a `not_countries` phrase
        hides the shorter country name inside it), and forms match whole words only: "Nga" does not match in
        "Ngan" or "Nga_Sơn". A title before a country name joins its mention, and mentions of the same country
        separated only by spaces merge ("Tổng thống Pháp" + "Emmanuel Macron")."""
        found: list[Mention] = []
        for match in self.pattern.finditer(text):
            country = self.surface.get(match.group("name"))
            if country is None:
                continue
            start = match.start()
            previous = found[-1] if found else None
            if previous and previous.country == country and not text[previous.end : start].strip():
                found[-1] = Mention(country, text[previous.start : match.end()], previous.start, match.end())
            else:
                found.append(Mention(country, text[start : match.end()], start, match.end()))
        return found

    def countries(self, text: str) -> dict[str, list[str]]:
        """Canonical name → the surface forms that mention it, in order of appearance."""
        out: dict[str, list[str]] = {}
        for mention in self.find(text):
            out.setdefault(mention.country, []).append(mention.text)
        return out


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", " ".join(str(text).split()))


def _strings(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise GazetteerError(f"{where}: expected a list of strings")
    return [_nfc(item) for item in value if item.strip()]


@lru_cache(maxsize=8)
def load_gazetteer(path: str | Path = DEFAULT_GAZETTEER) -> Gazetteer:
    """Read `not_countries: [...]` and `entries: [{name, iso, kind, aliases, places, people}]`."""
    path = Path(path)
    if not path.is_file():
        raise GazetteerError(f"{path}: gazetteer not found (pass --gazetteer PATH)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise GazetteerError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise GazetteerError(f"{path}: expected a mapping with an 'entries' list")
    surface: dict[str, str | None] = {}
    kinds: dict[str, str] = {}
    form_kinds: dict[str, str] = {}
    places: dict[str, list[str]] = {}
    people_of: dict[str, list[tuple[str, str]]] = {}
    person_titles: dict[str, str] = {}
    titles, role_titles = set(TITLES), set()
    for number, entry in enumerate(data["entries"]):
        where = f"{path}: entries[{number}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise GazetteerError(f"{where}: each entry needs a 'name'")
        name = _nfc(entry["name"])
        where = f"{path}: entry {name!r}"
        kinds[name] = entry.get("kind") or "country"
        if kinds[name] not in ("country", "bloc"):
            raise GazetteerError(f"{where}: kind must be 'country' or 'bloc', not {kinds[name]!r}")
        forms = {"name": [name], "alias": _strings(entry.get("aliases"), f"{where}: aliases"),
                 "place": _strings(entry.get("places"), f"{where}: places")}  # fmt: skip
        people = entry.get("people") or []
        if not isinstance(people, list):
            raise GazetteerError(f"{where}: people: expected a list")
        forms["person"] = []
        places[name] = forms["place"]
        people_of[name] = []
        for person in people:
            if not isinstance(person, dict) or not isinstance(person.get("name"), str):
                raise GazetteerError(f"{where}: people: each person needs a 'name'")
            person_forms = [_nfc(person["name"]), *_strings(person.get("aliases"), f"{where}: people")]
            forms["person"] += person_forms
            role = person.get("role") if isinstance(person.get("role"), str) else ""
            # "Bộ trưởng Quân đội (5/2022–9/2025); Thủ tướng (9/2025–)" → both offices, without their years
            role_titles.update(title for title in (current_title(part) for part in role.split(";")) if title)
            title = current_title(role)
            people_of[name].append((person_forms[0], title))
            for form in person_forms:
                person_titles.setdefault(form, title)
        for kind, items in forms.items():
            for item in items:
                # The first entry to claim a form keeps it; a later claim is a gazetteer ambiguity we do not guess.
                # "điện Kremlin" also starts a sentence as "Điện Kremlin"; never the reverse ("Anh" ≠ "anh").
                for form in (item, item[:1].upper() + item[1:]) if item[:1].islower() else (item,):
                    if form not in surface:
                        surface[form], form_kinds[form] = name, kind
    for phrase in _strings(data.get("not_countries"), f"{path}: not_countries"):
        surface[phrase] = None  # wins over any alias it contains, by being longer
    if not surface:
        raise GazetteerError(f"{path}: no names in 'entries'")
    # A role that names a state ("Thủ tướng Hà Lan" for NATO's Mark Rutte) is no title: it would join that
    # state's name to the person's entry.
    names = re.compile(rf"(?<![\w])(?:{_trie_regex(list(surface))})(?![\w])")
    titles |= {item for item in role_titles if not names.search(item)}
    title = "|".join(re.escape(item) for item in sorted(titles, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w])(?:(?P<title>{title})\s+)?(?P<name>{_trie_regex(list(surface))})(?![\w])")
    return Gazetteer(surface, kinds, pattern, form_kinds, places, people_of, person_titles)


def current_title(role: str) -> str:
    """A person's present title from a gazetteer role: "Bộ trưởng Quân đội (5/2022–9/2025); Thủ tướng (9/2025–)"
    → "Thủ tướng" (the last office listed, without its years)."""
    return _nfc(re.sub(r"\(.*?\)", "", role.split(";")[-1])) if role else ""


def _trie_regex(words: list[str]) -> str:
    """One regex for many literals: a character trie, so matching cost does not grow with the word count.
    Greedy optional branches try the longest form first and back off when the word boundary fails."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = True

    def emit(node: dict) -> str:
        branches = [re.escape(char) + emit(child) for char, child in sorted(node.items()) if char]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            return f"(?:{body})?"
        return body

    return emit(trie)


TARGET_OPEN, TARGET_CLOSE = "«", "»"
BELLIGERENTS = ("Nga", "Ukraine")
# What a masked third-country target reads as, in the sentence and as the pair's country segment.
MASK = "TARGET"
GAZETTEER_FILE = "gazetteer.yaml"  # a run's own copy


def copy_gazetteer(source: str | Path, folder: Path) -> Gazetteer | None:
    """Copy the gazetteer into a run's folder (its predictions must not change when the project's copy does)
    and load the copy; None for "" (targets are then found by their name alone)."""
    if not source:
        return None
    if not Path(source).is_file():
        raise GazetteerError(f"{source}: gazetteer not found (key 'model.gazetteer'; '' finds targets by name alone)")
    shutil.copyfile(source, folder / GAZETTEER_FILE)
    return load_gazetteer(folder / GAZETTEER_FILE)


def target_spans(text: str, country: str, gazetteer: Gazetteer | None = None) -> list[tuple[int, int]]:
    """(start, end) of every mention of `country` in `text`: any gazetteer form (Putin, Điện Kremlin → Nga);
    without a gazetteer, or when it finds none, the country's own name as a whole word."""
    spans = [(m.start, m.end) for m in gazetteer.find(text) if m.country == country] if gazetteer else []
    if not spans:
        spans = [match.span() for match in re.finditer(rf"(?<!\w){re.escape(country)}(?!\w)", text)]
    return spans


def mark_target(text: str, country: str, gazetteer: Gazetteer | None = None) -> str:
    """Wrap the target's mentions in « »: "« Tổng thống Pháp Emmanuel Macron » gặp ông Putin" for Pháp. In a
    sentence naming several countries this tells the model which one the label is about."""
    for start, end in reversed(target_spans(text, country, gazetteer)):
        text = f"{text[:start]}{TARGET_OPEN} {text[start:end]} {TARGET_CLOSE}{text[end:]}"
    return text


def target_view(text: str, country: str, gazetteer: Gazetteer | None = None, *, mark: bool = False,
                mask: bool = False) -> tuple[str, str]:  # fmt: skip
    """The (country, sentence) a model reads. `mask`: a third country's mentions and its name become MASK, so
    the model must judge what the sentence says the target did, not who it is (the belligerents keep their
    names: LABELS.md ties their label to who they are). `mark`: the target's mentions are wrapped in « »."""
    if mask and country not in BELLIGERENTS:
        for start, end in reversed(target_spans(text, country, gazetteer)):
            text = f"{text[:start]}{MASK}{text[end:]}"
        country = MASK
    if mark:
        text = mark_target(text, country, gazetteer if country != MASK else None)
    return country, text
