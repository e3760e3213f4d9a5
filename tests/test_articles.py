"""Page cleaning and sentence splitting: the seed pages, Vietnamese punctuation cases, and fuzzing."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from train.articles import clean_page, html_to_text, normalize, split_sentences

from .conftest import SHARED

SEEDS = SHARED / "seeds"
needs_seeds = pytest.mark.skipif(not SEEDS.is_dir(), reason=f"{SEEDS} is absent (shared seed pages)")


def seed(prefix: str) -> str:
    return next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")


@needs_seeds
def test_seed_000_keeps_the_body_and_drops_related_links_and_the_headline_list():
    body = clean_page(seed("000"))
    assert "Pháp cũng kêu gọi Nga" in body
    assert "Tuyên bố của bộ trên có đoạn" in body
    assert body.rstrip().endswith("phối hợp nỗ lực chống khủng bố.")  # the last body paragraph ends the text
    assert "Tin liên quan" not in body and "Tầm nhìn EU của Tổng thống Pháp Emmanuel Macron" not in body
    for tail in ("Tin thế giới 3/4", "NATO tuyên bố sẽ không mời Ukraine", "Tin cũ hơn", "Greenland", "Nhỏ Bình thường"):
        assert tail not in body
    title = "Điện đàm sang Nga, Bộ trưởng Quốc phòng Pháp 'nói đỡ' cho Ukraine, tuyên bố thẳng sẽ tiếp tục hỗ trợ Kiev"
    assert body.count(title) == 1  # the repeated title is kept once
    assert "(Nguồn: AFP)" not in body  # captions are not article sentences


@needs_seeds
@pytest.mark.parametrize(
    "prefix, kept, dropped",
    [
        ("001", "Anh và Pháp đã ký một tuyên bố chung", ["Hotline", "Google News", "#Tổng thống Macron", "a.jpg"]),
        ("002", "Theo Phó Thủ tướng Italy", ["TIN LIÊN QUAN", "ngoại giao bóng đá", "tarot", "lá chắn", "Phiên bản"]),
        ("003", "Ngoại trưởng Rubio được cho là", ["Bài viết hay", "Tesla", "dâu tây", "user image"]),
        ("004", "chấm dứt cuộc xung đột kéo dài hơn 3 năm qua ở Ukraine", ["Có thể bạn quan tâm", "Mercosur", "Tô Lâm"]),
    ],
)
def test_other_seeds_keep_their_body_and_drop_the_tail(prefix, kept, dropped):
    body = clean_page(seed(prefix))
    assert kept in body
    for text in dropped:
        assert text not in body, text


@pytest.mark.parametrize(
    "text, expected",
    [
        ('Ông nói: "Tôi đồng ý." Xong.', ['Ông nói: "Tôi đồng ý."', "Xong."]),
        ("Ông Putin nói: “Chúng tôi sẵn sàng. Nhưng phải công bằng.” Sau đó ông rời đi.",
         ["Ông Putin nói: “Chúng tôi sẵn sàng. Nhưng phải công bằng.”", "Sau đó ông rời đi."]),
        ("TP.HCM có mưa. Th.S Nguyễn Văn A nói. Ngày 3/4, lãi suất 3,5%. Giá 3.5 USD. GS. Lê đến.",
         ["TP.HCM có mưa.", "Th.S Nguyễn Văn A nói.", "Ngày 3/4, lãi suất 3,5%.", "Giá 3.5 USD.", "GS. Lê đến."]),
        ("J. Biden đến Kiev. Mr. Smith ở đây! Thật sao? Vâng…", ["J. Biden đến Kiev.", "Mr. Smith ở đây!", "Thật sao?", "Vâng…"]),
        ("Dòng một không dấu chấm\nDòng hai.", ["Dòng một không dấu chấm", "Dòng hai."]),
        ("Câu có “ngoặc không đóng. Vẫn tiếp. Và tiếp.", ["Câu có “ngoặc không đóng.", "Vẫn tiếp.", "Và tiếp."]),
        ("ông nói. và tiếp tục", ["ông nói. và tiếp tục"]),  # a lower-case word does not start a sentence
    ],
)  # fmt: skip
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


@needs_seeds
def test_seed_sentences_never_split_inside_a_quote():
    sentences = split_sentences(clean_page(seed("002")))
    quote = [s for s in sentences if s.startswith("Tổng thống Putin nêu rõ:")]
    assert len(quote) == 1 and quote[0].endswith("một cách tích cực\".")
    assert all(len(s) > 3 for s in sentences)


def test_html_pages_lose_tags_scripts_and_entities():
    page = ("<html><head><title>t</title><script>var x='Nga';</script></head><body><nav>Trang chủ</nav>"
            "<p>Đức công bố gói viện trợ mới cho Ukraine trị giá 500 triệu USD.</p><p>Pháp &amp; Anh ủng hộ.</p>"
            "</body></html>")  # fmt: skip
    text = html_to_text(page)
    assert "var x" not in text and "<p>" not in text and "Pháp & Anh" in text
    assert split_sentences(clean_page(text))[0].startswith("Đức công bố")


def test_short_text_without_prose_paragraphs_is_kept_whole():
    assert clean_page("Đức viện trợ Ukraine.") == "Đức viện trợ Ukraine."
    assert clean_page("") == ""


def test_normalize_composes_diacritics_and_drops_invisible_characters():
    assert normalize("Nga\u0301\u200b  \u00a0x") == "Ngá x"


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=400))
def test_fuzz_cleaner_and_splitter_never_crash(text):
    body = clean_page(text)
    sentences = split_sentences(body)
    assert all(s and s == s.strip() and "\n" not in s for s in sentences)
    html_to_text(text)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["Ông nói:", '"', "“", "”", ".", " ", "\n", "Nga", "3/4", "TP.HCM", "…", "?", "Tin liên quan",
                                 "Đọc thêm", "a b c d e f g."]), max_size=60))  # fmt: skip
def test_fuzz_punctuation_soup_keeps_every_word(parts):
    text = "".join(parts)
    words = [w for w in normalize(text).split() if w]
    assert "".join("".join(split_sentences(text)).split()) == "".join(words)  # splitting loses no text
    clean_page(text)


@pytest.mark.parametrize("page", ["<script" * 100_000, "<!--" * 100_000, "<p aaaa" * 100_000, "a. " * 300_000,
                                  "“Câu. " * 100_000, "x" * 3_000_000])  # fmt: skip
def test_pathological_pages_stay_linear(page):
    import time

    start = time.perf_counter()
    sentences = split_sentences(clean_page(html_to_text(page)))
    assert time.perf_counter() - start < 15  # quadratic code took minutes on these
    assert all(len(s) <= 1500 for s in sentences)
