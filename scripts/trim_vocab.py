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
- Vietnamese word lists: pyvi's words.txt (MIT) and underthesea's Viet74K.txt (Apache-2.0): each syllable in lower,
  Capitalized and UPPER case, also without its diacritics (viet, Nguyen) and right after an opening quote,
  bracket, dash or slash ("Tôi, (Nếu); the initials of each multi-syllable word as an acronym (ĐH, THPT);
- names: Faker's person, city and company names for 30 locales and its English lorem words (MIT); Faker's
  Russian, Ukrainian and Bulgarian names transliterated to Latin letters (Sergey, Volodymyr); the US census first
  names and 20,000 most common surnames of the `names` package (MIT; census data, public domain); Babel's CLDR
  territory, language, currency, script and city names in 5 languages (BSD-3); every pinyin syllable (initial +
  final) and pair of syllables, Capitalized (Zhongguo, Xiaoping);
- English: the 35,000 most frequent words of symspellpy's frequency_dictionary_en_82_765.txt (MIT; made from
  Google Books Ngram counts, free for any use, and the SCOWL word list, MIT-like), lower and Capitalized;
- e5's "query: " and "passage: " prefixes;
- generated: integers 0-9999, thousands (1.000, 2.500.000), decimals (3,5 and 2.8), ranges (1-3), dates
  (12-5-2018, 12/5/2018, 5/2018, 2018-05-12), times (19:30), numbers 0-2100 next to punctuation ((12, 2020.,
  -300, /05), every pair of punctuation marks (.” ?”), URL parts (https://www., .com) and every 2- and
  3-letter uppercase acronym.
Word lists give only words in Latin letters: a Cyrillic, Greek, Arabic, CJK or Thai name in a word list costs a
384-float embedding row per piece, and Vietnamese news writes names in Latin letters (single characters of
cased scripts are still kept, see above). The word-list versions are pinned below: another version may give
another list.
"""
from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
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
PINNED = {"pyvi": "0.1.1", "underthesea": "9.5.0", "faker": "40.63.0", "babel": "2.19.0",
          "symspellpy": "6.10.1", "names": "0.3.0"}
ENGLISH_WORDS, SURNAMES = 35000, 20000
FAKER_LOCALES = ("en_US en_GB en_IN de_DE fr_FR es_ES it_IT pl_PL nl_NL vi_VN tr_TR pt_BR sv_SE cs_CZ hu_HU "
                 "fi_FI no_NO da_DK ro_RO hr_HR uk_UA ru_RU ja_JP ko_KR zh_CN id_ID th_TH ar_AA fa_IR he_IL").split()
BABEL_LOCALES = ("vi", "en", "fr", "de", "es")


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


def vietnamese_words() -> tuple[set[str], set[str]]:
    """(syllables, multi-syllable words) of pyvi's and underthesea's word lists."""
    import pyvi
    import underthesea

    syllables, words = set(), set()
    for f in (Path(pyvi.__file__).parent / "models" / "words.txt",
              Path(underthesea.__file__).parent / "corpus" / "data" / "Viet74K.txt"):
        for line in f.read_text(encoding="utf-8").splitlines():
            syllables.update(line.split())
            if len(line.split()) > 1:
                words.add(line.strip())
    return syllables, words


def _cases(words) -> set[str]:
    return {v for w in words for v in (w, w.lower(), w.capitalize(), w.upper())}


def _without_diacritics(word: str) -> str:
    word = word.replace("đ", "d").replace("Đ", "D")
    return "".join(c for c in unicodedata.normalize("NFD", word) if unicodedata.category(c) != "Mn")


def word_list_texts() -> list[str]:
    import babel

    syllables, multi = vietnamese_words()
    words = _cases(syllables) | _cases(_without_diacritics(s) for s in syllables)
    words |= {mark + w for w in _cases(syllables) for mark in '“"(\'‘«[-/'}
    words |= {"".join(s[0] for s in w.split()).upper() for w in multi}

    for loc in FAKER_LOCALES:
        words.update(_faker_words(loc))
    words.update(importlib.import_module("faker.providers.lorem.en_US").Provider.word_list)
    words.update(_transliterated(w, loc) for loc in ("ru_RU", "uk_UA", "bg_BG") for w in _faker_words(loc))

    for loc in BABEL_LOCALES:
        locale = babel.Locale.parse(loc)
        for table in (locale.territories, locale.languages, locale.currencies, locale.scripts):
            words.update(table.values())
        words.update(zone["city"] for zone in locale.time_zones.values() if "city" in zone)
    words |= english_words() | census_names() | pinyin()
    return sorted(w for w in words if _latin(w))


def _latin(word: str) -> bool:
    return all(c.isascii() or not c.isalpha() or unicodedata.name(c, "").startswith("LATIN") for c in word)


def _faker_words(loc: str) -> set[str]:
    words = set()
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
    return words


_CYRILLIC = {**dict(zip("абвгдеёжзийклмнопрстуфхцчшщыэюяієїґ",
                        "a b v g d e yo zh z i y k l m n o p r s t u f kh ts ch sh shch y e yu ya i ye yi g".split())),
             "ъ": "", "ь": ""}
_CYRILLIC_BY_LOCALE = {"ru_RU": {}, "uk_UA": {"и": "y", "г": "h", "ї": "yi", "є": "ye"},
                       "bg_BG": {"щ": "sht", "ъ": "a", "х": "h"}}


def _transliterated(word: str, loc: str) -> str:
    """Сергей → Sergey, Володимир → Volodymyr: the usual English spelling of Russian, Ukrainian and Bulgarian
    names."""
    table = {**_CYRILLIC, **_CYRILLIC_BY_LOCALE[loc]}
    out = ""
    for c in word:
        latin = table.get(c.lower(), c)
        out += latin.capitalize() if c.isupper() else latin
    return out.replace("iy", "y") if loc == "ru_RU" else out  # Dmitriy → Dmitry


def english_words() -> set[str]:
    """The ENGLISH_WORDS most frequent words of symspellpy's English frequency list, lower and Capitalized."""
    folder = Path(importlib.util.find_spec("symspellpy").submodule_search_locations[0])
    rows = [line.split() for line in (folder / "frequency_dictionary_en_82_765.txt").read_text().splitlines()]
    rows = sorted((row for row in rows if len(row) == 2), key=lambda row: -int(row[1]))
    return {v for word, _ in rows[:ENGLISH_WORDS] for v in (word, word.capitalize())}


def census_names() -> set[str]:
    """US census first names and the SURNAMES most common surnames (the `names` package's files), Capitalized."""
    folder = Path(importlib.util.find_spec("names").submodule_search_locations[0])
    first = [line.split()[0] for f in ("dist.male.first", "dist.female.first")
             for line in (folder / f).read_text().splitlines() if line.strip()]
    last = [line.split()[0] for line in (folder / "dist.all.last").read_text().splitlines() if line.strip()]
    return {w.capitalize() for w in first + last[:SURNAMES]}


def pinyin() -> set[str]:
    """Every pinyin initial + final and every pair of them, Capitalized: Chinese names and places (Xiaoping)."""
    initials = [""] + "b p m f d t n l g k h j q x zh ch sh r z c s y w".split()
    finals = ("a o e ai ei ao ou an en ang eng ong i ia ie iao iu ian in iang ing iong u ua uo uai ui uan un "
              "uang ueng v ve van vn er").split()
    syllables = {(i + f).replace("v", "u") for i in initials for f in finals if len(i + f) > 1}
    return {s.capitalize() for s in syllables} | {(a + b).capitalize() for a in syllables for b in syllables}


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
    out += [f"{a},{b} {a},{b}% {a}.{b}" for a in range(100) for b in range(10)]
    out += [f"{a}-{b}" for a in range(61) for b in range(61)]
    out += [f"{d}-{m}-{y} {d}/{m}/{y} {d:02d}/{m:02d}/{y} {m}/{y} {m}-{y} {y}-{m:02d}-{d:02d}"
            for y in range(1945, 2031) for m in range(1, 13) for d in range(1, 32)]
    out += [f"{h}:{m:02d} {h:02d}:{m:02d}" for h in range(24) for m in range(60)]
    out += [pattern.format(n) for n in range(2101) for pattern in (
        "{}.", "{},", "({}", "{})", "({})", "-{}", "+{}", "/{}", "{}-", "{}:", "{}%", "{}/", "“{}", "{}”", "{};",
        "#{}", "{}h", "{}km", "${}", "/{:02d}", ":{:02d}")]
    marks = string.punctuation + "“”‘’…–—«»·•"
    out += [a + b for a in marks for b in marks] + [" " + a + b for a in marks for b in marks]
    out += ["(...)", "[...]", "http://", "https://", "https://www.", "www."]
    tlds = "com vn net org gov edu int html htm php aspx asp uk ru cn jp kr de fr info io".split()
    out += [f".{tld}" for tld in tlds]
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
