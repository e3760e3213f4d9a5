"""Choose the SentencePiece pieces `bundled:e5-small-vi` keeps, and measure what they cover.

    python scripts/trim_vocab.py                 # rewrite train/e5_small_vi_pieces.txt
    python scripts/trim_vocab.py --check         # exit 1 if the committed list differs from a fresh one
    python scripts/trim_vocab.py --measure       # coverage on ../shared (seeds, realdev, corpus sample)

The kept set is exactly the pieces the original e5-small tokenizer produces on the chosen text, plus the
special tokens and every single-character piece of a cased or non-letter character (so Latin, Vietnamese,
Greek, Cyrillic letters, digits, punctuation and symbols never become <unk>). Because the Unigram tokenizer
picks the best-scoring segmentation and the kept pieces keep their scores, any text whose original
segmentation uses only kept pieces is segmented identically by the trimmed tokenizer.

The chosen text (all of it may ship with the project; nothing from ../shared, which is measurement data):
- our data: data/stance (text, mention, country), data/countries.yaml, data/GUIDELINES.md, data/articles;
- word lists: pyvi's words.txt (MIT) and underthesea's Viet74K.txt (Apache-2.0), each syllable in lower,
  Capitalized and UPPER case; Faker's person, city and company names for 30 locales and its English lorem
  words (MIT); Babel's CLDR territory, language, currency, script and city names in 6 languages (BSD-3);
- e5's "query: " and "passage: " prefixes;
- generated: integers 0-9999, thousands (1.000, 2.500.000), decimals (3,5), ranges (1-3), dates
  (12-5-2018, 12/5/2018, 5/2018) and every 2- and 3-letter uppercase acronym.
The word-list versions are pinned below: another version may give another list.
"""
from __future__ import annotations

import argparse
import collections
import importlib
import itertools
import json
import lzma
import string
import sys
import unicodedata
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
sys.path.insert(0, str(REPO))

from train.backbones import BUNDLED, bundled_encoder_path, read_kept_pieces  # noqa: E402

OUT = REPO / "train" / BUNDLED["e5-small-vi"]["keep"]
PINNED = {"pyvi": "0.1.1", "underthesea": "9.5.0", "faker": "40.63.0", "babel": "2.19.0"}
FAKER_LOCALES = ("en_US en_GB en_IN de_DE fr_FR es_ES it_IT pl_PL nl_NL vi_VN tr_TR pt_BR sv_SE cs_CZ hu_HU "
                 "fi_FI no_NO da_DK ro_RO hr_HR uk_UA ru_RU ja_JP ko_KR zh_CN id_ID th_TH ar_AA fa_IR he_IL").split()
BABEL_LOCALES = ("vi", "en", "fr", "de", "es", "ru")


def _check_versions() -> None:
    from importlib.metadata import PackageNotFoundError, version

    def installed(pkg: str) -> str | None:
        try:
            return version(pkg)
        except PackageNotFoundError:
            return None

    wrong = {pkg: installed(pkg) for pkg, want in PINNED.items() if installed(pkg) != want}
    if wrong:
        raise SystemExit(f"trim_vocab: needs {PINNED}; found {wrong} (pip install -e '.[test]' installs them)")


def data_texts() -> list[str]:
    out = []
    for f in sorted((REPO / "data" / "stance").glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                out += [row["text"], row["mention"], row["country"]]
    data = REPO / "data"
    for f in [data / "countries.yaml", data / "GUIDELINES.md", *sorted((data / "articles").iterdir())]:
        out += f.read_text(encoding="utf-8").splitlines()
    return out


def word_list_texts() -> list[str]:
    import babel
    import pyvi
    import underthesea

    syllables = set()
    for f in (Path(pyvi.__file__).parent / "models" / "words.txt",
              Path(underthesea.__file__).parent / "corpus" / "data" / "Viet74K.txt"):
        for line in f.read_text(encoding="utf-8").splitlines():
            syllables.update(line.split())
    words = {v for s in syllables for v in (s, s.lower(), s.capitalize(), s.upper())}

    for loc in FAKER_LOCALES:
        for module, attrs in (("person", ("first_names", "last_names", "first_names_male", "first_names_female",
                                          "last_names_male", "last_names_female", "first_romanized_names",
                                          "last_romanized_names")),
                              ("address", ("cities", "city_names", "states", "countries")),
                              ("company", ("company_suffixes", "catch_phrase_words", "bs_words"))):
            try:
                provider = importlib.import_module(f"faker.providers.{module}.{loc}").Provider
            except ImportError:
                continue
            for attr in attrs:
                words.update(_strings(getattr(provider, attr, None)))
    words.update(importlib.import_module("faker.providers.lorem.en_US").Provider.word_list)

    for loc in BABEL_LOCALES:
        locale = babel.Locale.parse(loc)
        for table in (locale.territories, locale.languages, locale.currencies, locale.scripts):
            words.update(table.values())
        words.update(zone["city"] for zone in locale.time_zones.values() if "city" in zone)
    return sorted(words)


def _strings(value) -> list[str]:
    """Faker keeps its word lists as tuples, lists, dicts of weights, or nested tuples of words."""
    if isinstance(value, dict):
        value = list(value)
    if not isinstance(value, (list, tuple)):
        return []
    return [v if isinstance(v, str) else " ".join(map(str, v)) for v in value if isinstance(v, (str, list, tuple))]


def generated_texts() -> list[str]:
    out = [str(n) for n in range(10000)]
    out += [f"{n}.000 {n}.500 {n}.000.000" for n in range(1, 1000)]
    out += [f"{a},{b} {a},{b}%" for a in range(100) for b in range(10)]
    out += [f"{a}-{b}" for a in range(61) for b in range(61)]
    out += [f"{d}-{m}-{y} {d}/{m}/{y} {d:02d}/{m:02d}/{y} {m}/{y} {m}-{y}"
            for y in range(1945, 2031) for m in range(1, 13) for d in range(1, 32)]
    upper = string.ascii_uppercase
    out += ["".join(p) for k in (2, 3) for p in itertools.product(upper, repeat=k)]
    return out


def chosen_texts() -> list[str]:
    prefixes = list(BUNDLED["e5-small"]["prefixes"].values())  # "query: ", "passage: "
    return prefixes + data_texts() + word_list_texts() + generated_texts()


def original_tokenizer():
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(bundled_encoder_path("e5-small", REPO / "models" / "backbones") / "tokenizer.json"))


def piece_counts(tok, texts) -> collections.Counter:
    counts = collections.Counter()
    for i in range(0, len(texts), 4096):
        for enc in tok.encode_batch(texts[i:i + 4096], add_special_tokens=False):
            counts.update(enc.ids)
    return counts


def kept_ids(tok) -> list[int]:
    pieces = [tok.id_to_token(i) for i in range(tok.get_vocab_size())]
    singles = {i for i, p in enumerate(pieces)
               if len(p.lstrip("▁")) == 1 and len(p) <= 2 and unicodedata.category(p[-1]) != "Lo"}
    specials = {0, 1, 2, 3, len(pieces) - 1}  # <s> <pad> </s> <unk> ... <mask>
    return sorted(set(piece_counts(tok, chosen_texts())) | singles | specials)


def write(ids: list[int], tok, path: Path) -> None:
    lines = [f"# {len(ids)} of {tok.get_vocab_size()} pieces of bundled:e5-small kept by bundled:e5-small-vi,",
             "# as original ids, ascending; made by scripts/trim_vocab.py (read its docstring)."]
    path.write_text("\n".join(lines + [str(i) for i in ids]) + "\n", encoding="utf-8")


def measure(keep: set[int], tok, corpus_lines: int) -> None:
    realdev = [json.loads(line) for line in (SHARED / "realdev" / "sentences.jsonl").read_text().splitlines()
               if line.strip()]
    with lzma.open(SHARED / "corpora" / "vietnews_world_politics.txt.xz", "rt", encoding="utf-8") as fh:
        corpus = [line.replace("_", " ") for line in itertools.islice(fh, corpus_lines)]
    sources = {
        "seeds": [f.read_text() for f in sorted((SHARED / "seeds").glob("*.txt"))],
        "realdev sentences": [row["text"] for row in realdev],
        "realdev articles": [f.read_text() for f in sorted((SHARED / "realdev" / "articles").glob("*.txt"))],
        f"corpus first {corpus_lines} lines": corpus,
    }
    missed = collections.Counter()
    print(f"kept {len(keep)} pieces")
    print("| text | pieces | kept | coverage |\n| --- | ---: | ---: | ---: |")
    for name, texts in sources.items():
        counts = piece_counts(tok, texts)
        total, kept = sum(counts.values()), sum(n for i, n in counts.items() if i in keep)
        missed.update({tok.id_to_token(i): n for i, n in counts.items() if i not in keep})
        print(f"| {name} | {total} | {kept} | {kept / total:.2%} |")
    print("most frequent dropped pieces:", missed.most_common(40))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="compare a fresh list with the committed one")
    ap.add_argument("--measure", action="store_true", help="coverage of the committed list on ../shared text")
    ap.add_argument("--corpus-lines", type=int, default=20000)
    args = ap.parse_args()
    tok = original_tokenizer()
    if args.measure:
        measure(set(read_kept_pieces(OUT)), tok, args.corpus_lines)
        return
    _check_versions()
    ids = kept_ids(tok)
    if args.check:
        same = ids == read_kept_pieces(OUT)
        print(f"{OUT.name}: {'matches' if same else 'DIFFERS from'} a fresh list of {len(ids)} pieces")
        raise SystemExit(0 if same else 1)
    write(ids, tok, OUT)
    print(f"wrote {OUT} ({len(ids)} pieces)")


if __name__ == "__main__":
    main()
