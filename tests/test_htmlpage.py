""".html input: the article, its title and date through trafilatura; page furniture dropped; the tag stripper as fallback."""

import json

import trafilatura

from train.articles import html_to_text
from train.batch import Document, iter_documents, predict_documents, prepare
from train.htmlpage import extract_html
from train.mentions import DEFAULT_GAZETTEER, load_gazetteer

from .conftest import FIXTURES
from .test_batch_predict import KeywordPredictor

PAGES = FIXTURES / "html"
GAZETTEER = load_gazetteer(DEFAULT_GAZETTEER)


def sentences(name):
    page = (PAGES / name).read_text(encoding="utf-8")
    prepared = prepare(Document(name, name, text=page, html=True), GAZETTEER)
    return prepared.sentences, prepared.doc.meta


def test_news_page_keeps_title_date_and_body_and_drops_the_furniture():
    found, meta = sentences("news_article.html")
    assert meta == {"extractor": "trafilatura", "title": "Đức gửi thêm hệ thống phòng không cho Ukraine", "date": "2025-03-03"}
    assert found[0] == meta["title"]  # the headline is read, once
    assert found.count(meta["title"]) == 1
    text = "\n".join(found)
    for kept in ("Berlin công bố gói viện trợ quân sự mới", "Bộ Quốc phòng Đức hôm 2/3",
                 '"Đức sẽ tiếp tục đứng về phía Ukraine', "Dmitry Peskov cho rằng", "Bộ Ngoại giao Trung Quốc kêu gọi"):  # fmt: skip
        assert kept in text
    for dropped in ("cookie", "Trang chủ", "Hotline", "Chia sẻ", "Mỹ và Nga đàm phán ở Riyadh",  # banner, menus, share bar
                    "Mỹ mới là nước quyết định", "Nga sẽ đáp trả mạnh mẽ", "Mong hai bên",  # readers' comments
                    "Hungary phản đối gói trừng phạt", "Pháp cân nhắc", "Triều Tiên bác tin",  # related-link lists
                    "Nga cảnh báo phương Tây", "Bản quyền", "Tòa soạn", "Ảnh: Reuters", "Từ khóa"):  # script, footer, tags  # fmt: skip
        assert dropped not in text, dropped


def test_table_layout_page_keeps_body_and_reads_the_date_from_the_text():
    found, meta = sentences("old_cms_page.html")
    assert (meta["title"], meta["date"]) == ("Thổ Nhĩ Kỳ sẵn sàng làm trung gian hòa giải", "2025-05-14")
    assert len(found) == 5 and found[0] == meta["title"] and found[-1].startswith("Phía Ukraine chưa đưa ra")
    text = "\n".join(found)
    assert all(gone not in text for gone in ("CHUYÊN MỤC", "Các tin khác", "Mỹ gia hạn", "Belarus tập trận", "Bản quyền"))


def test_falls_back_to_tag_stripping_when_the_extractor_finds_nothing(monkeypatch):
    framed = "<frameset><noframes><p>Pháp tuyên bố tiếp tục viện trợ quân sự cho Ukraine trong năm nay.</p></noframes></frameset>"
    text, meta = extract_html(framed)  # trafilatura returns nothing for a frameset page
    assert meta == {"extractor": "tags"} and "Pháp tuyên bố tiếp tục viện trợ" in text

    page = (PAGES / "old_cms_page.html").read_text(encoding="utf-8")
    monkeypatch.setattr(trafilatura, "bare_extraction", lambda *args, **kwargs: None)
    assert extract_html(page) == (html_to_text(page), {"extractor": "tags"})

    def broken(*args, **kwargs):
        raise ValueError("parser gave up")

    monkeypatch.setattr(trafilatura, "bare_extraction", broken)
    assert extract_html(page)[1] == {"extractor": "tags"}  # a page that breaks the extractor is still read


def test_batch_outputs_carry_title_and_date(tmp_path):
    predict_documents(KeywordPredictor(), iter_documents([str(PAGES)]), GAZETTEER, tmp_path, progress=False)
    ledger = {row["article"]: row for row in map(json.loads, (tmp_path / "documents.jsonl").open(encoding="utf-8"))}
    assert ledger["news_article.html"]["date"] == "2025-03-03" and ledger["old_cms_page.html"]["extractor"] == "trafilatura"
    articles = [json.loads(line) for line in (tmp_path / "articles.jsonl").open(encoding="utf-8")]
    germany = next(row for row in articles if row["article"] == "news_article.html" and row["country"] == "Đức")
    assert germany["title"] == "Đức gửi thêm hệ thống phòng không cho Ukraine" and germany["date"] == "2025-03-03"
    assert not any(row["country"] == "Mỹ" for row in articles if row["article"] == "news_article.html")  # only in comments
