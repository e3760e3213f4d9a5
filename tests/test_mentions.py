"""The gazetteer and mention finder: longest match, not_countries, titles, word boundaries, the real file."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from train.articles import clean_page, split_sentences
from train.mentions import DEFAULT_GAZETTEER, GazetteerError, load_gazetteer, mark_target

from .conftest import FIXTURES, REPO, SHARED

MINI = FIXTURES / "countries_mini.yaml"
SEEDS = SHARED / "seeds"


@pytest.fixture(scope="module")
def gaz():
    return load_gazetteer(MINI)


def found(gaz, text):
    return [(m.country, m.text) for m in gaz.find(text)]


def test_title_country_and_person_make_one_mention(gaz):
    text = "Ngày 3/4, Bộ trưởng Quốc phòng Pháp Sebastien Lecornu điện đàm với Tổng thống Nga Vladimir Putin."
    assert found(gaz, text) == [
        ("Pháp", "Bộ trưởng Quốc phòng Pháp Sebastien Lecornu"),
        ("Nga", "Tổng thống Nga Vladimir Putin"),
    ]
    assert found(gaz, "Tổng thống Pháp nói.") == [("Pháp", "Tổng thống Pháp")]


def test_mark_target_wraps_every_mention_of_the_target_only(gaz):
    text = "Tổng thống Pháp Emmanuel Macron gặp ông Putin; Paris nói Nga phải rút quân."
    assert mark_target(text, "Pháp", gaz) == "« Tổng thống Pháp Emmanuel Macron » gặp ông Putin; « Paris » nói Nga phải rút quân."
    assert mark_target(text, "Nga", gaz) == "Tổng thống Pháp Emmanuel Macron gặp ông « Putin »; Paris nói « Nga » phải rút quân."
    # without a gazetteer only the name itself, as a whole word; a country not mentioned leaves the text as it is
    assert mark_target("Nga Sơn và Nga", "Nga") == "« Nga » Sơn và « Nga »"
    assert mark_target(text, "Đức", gaz) == text


def test_capitals_institutions_and_leaders_count(gaz):
    text = "Paris và Điện Kremlin tranh cãi; điện Kremlin im lặng, Zelensky cảm ơn Washington và Liên minh châu Âu."
    assert gaz.countries(text) == {
        "Pháp": ["Paris"], "Nga": ["Điện Kremlin", "điện Kremlin"], "Ukraine": ["Zelensky"], "Mỹ": ["Washington"],
        "EU": ["Liên minh châu Âu"],
    }  # fmt: skip


def test_longest_match_wins_and_not_countries_hide_shorter_aliases(gaz):
    assert found(gaz, "Anh ấy nói về Nga Sơn và Hằng Nga.") == []
    assert found(gaz, "Động đất ở Đài Loan (Trung Quốc) hôm qua, Trung Quốc nói.") == [("Trung Quốc", "Trung Quốc")]
    assert found(gaz, "Vương quốc Anh và Anh.") == [("Anh", "Vương quốc Anh"), ("Anh", "Anh")]


def test_word_boundaries(gaz):
    assert found(gaz, "Anh_ Nga_Sơn Ngan Pháp1 xNga Parisian anh nga pháp") == []
    assert found(gaz, "(Nga), Nga-Ukraine, “Pháp”.") == [("Nga", "Nga"), ("Nga", "Nga"), ("Ukraine", "Ukraine"), ("Pháp", "Pháp")]


def test_bad_gazetteer_names_the_file_and_entry(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("entries:\n  - name: Pháp\n    aliases: Paris\n", encoding="utf-8")
    with pytest.raises(GazetteerError, match=r"bad.yaml: entry 'Pháp': aliases: expected a list of strings"):
        load_gazetteer(bad)
    with pytest.raises(GazetteerError, match="gazetteer not found"):
        load_gazetteer(tmp_path / "missing.yaml")


def real_or_mini():
    return DEFAULT_GAZETTEER if DEFAULT_GAZETTEER.is_file() else MINI


def test_default_gazetteer_is_the_repo_data_file():
    assert DEFAULT_GAZETTEER == REPO / "data" / "countries.yaml"


@pytest.mark.skipif(not DEFAULT_GAZETTEER.is_file(), reason="data/countries.yaml not written yet")
def test_real_gazetteer_loads_and_finds_the_label_guide_examples():
    gaz = load_gazetteer(DEFAULT_GAZETTEER)
    text = "Lavrov, Nhà Trắng, Điện Elysée, Yermak, Bắc Kinh, Erdogan và Orban đều lên tiếng."
    assert set(gaz.countries(text)) >= {"Nga", "Mỹ", "Pháp", "Ukraine", "Trung Quốc", "Thổ Nhĩ Kỳ", "Hungary"}
    assert "Anh" not in gaz.countries("Anh ấy nói rằng anh sẽ đi.")


@pytest.mark.skipif(not SEEDS.is_dir(), reason=f"{SEEDS} is absent")
@pytest.mark.parametrize("path", [MINI, DEFAULT_GAZETTEER], ids=["mini", "real"])
def test_seed_000_finds_france_through_all_its_names(path):
    if not path.is_file():
        pytest.skip("data/countries.yaml not written yet")
    gaz = load_gazetteer(path)
    page = next(SEEDS.glob("000_*.txt")).read_text(encoding="utf-8")
    surfaces = " | ".join(s for sentence in split_sentences(clean_page(page)) for s in gaz.countries(sentence).get("Pháp", []))
    for name in ("Pháp", "Paris", "Lecornu", "Macron"):
        assert name in surfaces, name


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("NgaPháp AnhTổng thốngMỹ_ấy-.()“”Sơn\n")), max_size=120) | st.text(max_size=200))
def test_fuzz_mention_finder_never_crashes_and_spans_are_exact(text):
    gaz = load_gazetteer(real_or_mini())
    for mention in gaz.find(text):
        assert text[mention.start : mention.end] == mention.text
        assert mention.start == 0 or not (text[mention.start - 1].isalnum() or text[mention.start - 1] == "_")
        assert mention.end == len(text) or not (text[mention.end].isalnum() or text[mention.end] == "_")
