"""Raw news page → clean article body → sentences (Vietnamese-aware, quote-aware)."""

from __future__ import annotations

import html
import re
import unicodedata

# Lines that start the page's tail (comments, "read more", other news): everything from here on is dropped.
END_MARKERS = (
    "đọc thêm", "tin cũ hơn", "tin mới hơn", "có thể bạn quan tâm", "xem thêm", "tin khác", "các tin khác",
    "tin cùng chuyên mục", "cùng chuyên mục", "bài viết hay", "ý kiến", "bình luận", "phiên bản di động",
    "tin mới nhất", "tin nổi bật", "đọc nhiều", "tin đọc nhiều", "bạn có thể quan tâm", "tin xem nhiều",
)  # fmt: skip
# Lines that open a block of links inside the body: the block runs until the next body paragraph.
RELATED_MARKERS = ("tin liên quan", "bài liên quan", "tin cùng chủ đề", "bài viết liên quan")

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_INVISIBLE = re.compile(r"[\u200b-\u200d\u2060\ufeff\u00ad]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# A paragraph that ends like prose: terminal punctuation, optionally inside closing quotes or brackets.
_PROSE_END = re.compile(r"[.!?…:;][\"”’'»)\]]*$")
_TEASER_END = re.compile(r"(\.\.\.|…)$")  # headline teasers are cut off with an ellipsis
_CAPTION = re.compile(r"\((ảnh|nguồn|photo|video)\s*:[^()]*\)$", re.IGNORECASE)
_WORD = re.compile(r"\w+")
_NAV_WORDS = re.compile(r"(?i)hotline|quảng cáo|đăng nhập|đăng ký|chia sẻ|sao chép|zalo|facebook|gmt|trang chủ|"
                        r"tòa soạn|liên hệ|theo dõi|google news|email|bản in")  # fmt: skip
_INLINE_LINK = re.compile(r"(?i)(xem thêm|đọc thêm|tin liên quan|bài liên quan|xem tiếp)\s*[:>»]")
MIN_BODY_WORDS = 6  # shorter prose-like lines are bylines, credits and buttons more often than article text


_SKIP_TAGS = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCK_TAGS = {"p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "tr", "table", "section",
               "article", "header", "footer", "nav", "aside", "blockquote", "figure", "figcaption", "title"}  # fmt: skip
# A tag is bounded in length and holds no '<' or '>': one scan over the page, even over broken markup (the
# stdlib HTMLParser and lazy `<script>.*?</script>` regexes both go quadratic on unclosed tags).
_TAG = re.compile(r"<(/?)([a-zA-Z][\w:-]*)[^<>]{0,4000}>|<!--")
_SKIP_END = {tag: re.compile(rf"</{tag}\s*>", re.IGNORECASE) for tag in _SKIP_TAGS}


def html_to_text(page: str) -> str:
    """Strip tags from an HTML page, keeping block boundaries as line breaks and dropping scripts, styles and
    comments; entities are decoded."""
    parts: list[str] = []
    position = 0
    while True:
        match = _TAG.search(page, position)
        if not match:
            parts.append(html.unescape(page[position:]))
            break
        parts.append(html.unescape(page[position : match.start()]))
        if match.group(0) == "<!--":
            close = page.find("-->", match.end())
            position = len(page) if close < 0 else close + 3
            continue
        position = match.end()
        tag = match.group(2).lower()
        if tag in _BLOCK_TAGS:
            parts.append("\n")
        elif tag in _SKIP_TAGS and not match.group(1):
            close = _SKIP_END[tag].search(page, position)
            position = len(page) if close is None else close.end()
    return "".join(parts)


def normalize(text: str) -> str:
    """NFC (Vietnamese diacritics come both precomposed and combining), no control or invisible characters."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", text))
    return "\n".join(_SPACES.sub(" ", line).strip() for line in text.split("\n"))


def _key(line: str) -> str:
    return line.lower().rstrip(" :.").strip()


def _is_doubled(line: str) -> bool:
    """'Headline Headline': link lists often print the title twice in one line (image alt + anchor text)."""
    half = len(line) // 2
    return len(line) > 20 and line[:half].strip() == line[half:].strip()


def _headline_like(line: str) -> bool:
    """Five words or more with letters, and none of the words that mark site chrome (share bars, hotlines)."""
    words = [word for word in _WORD.findall(line) if not word.isdigit()]
    return len(words) >= 5 and "|" not in line and not _NAV_WORDS.search(line) and not _is_doubled(line)


def _is_body(line: str) -> bool:
    return (
        len(_WORD.findall(line)) >= MIN_BODY_WORDS
        and bool(_PROSE_END.search(line))
        and not _TEASER_END.search(line)
        and not _CAPTION.search(line)
        and not _is_doubled(line)
    )


def clean_page(text: str) -> str:
    """Keep the article: its title once and its prose paragraphs; drop navigation, repeated titles, captions,
    "Tin liên quan" link blocks, and everything from "Đọc thêm"-style markers or a headline list onward.

    A headline list is recognised by a non-prose line printed twice in a row (headline + link text), which
    captions (repeated too, but ending in "(Ảnh: ...)") are not. Returns paragraphs joined by newlines; if no
    paragraph looks like prose (a one-line tweet, a short note), the normalized text itself comes back.
    """
    lines = [line for line in normalize(text).split("\n") if line]
    kept: list[str] = []
    seen: set[str] = set()
    body_started = False
    in_related = False
    title = ""
    for index, line in enumerate(lines):
        key = _key(line)
        body = _is_body(line)
        inline = _INLINE_LINK.match(line)
        if inline and line[inline.end() :].strip():
            continue  # "Xem thêm: <headline>" is one link inside the body
        # "Xem thêm:" with a colon introduces links inside the body; a bare "Đọc thêm" heads the page's tail.
        if body_started and not line.endswith(":") and (key in END_MARKERS or key.startswith("bài viết hay")):
            break
        if key in RELATED_MARKERS or key in END_MARKERS:
            in_related = True
            continue
        if in_related and not body:
            continue
        in_related = False
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if body_started and not body and line == following and not _CAPTION.search(line):
            break  # a headline list after the article
        if not body:
            if not body_started and _headline_like(line):
                title = line  # the last headline-like line before the first paragraph is the title
            continue
        if not body_started:
            body_started = True
            if title:
                kept.append(title)
                seen.add(title)
        if line not in seen:
            kept.append(line)
            seen.add(line)
    if not body_started:
        return "\n".join(lines)
    return "\n".join(kept)


_LETTERS = re.compile(r"[^\W\d_]+")


def diacritic_share(text: str) -> tuple[float, int]:
    """The share of words that carry a diacritic or đ, and the number of words. Vietnamese news runs at 0.74-0.83
    (data/articles and the seed pages; no sentence of data/stance falls below 0.38); text typed without accents
    ("Nga va Ukraine", "Hoa Ky") is near 0, and so is English."""
    words = _LETTERS.findall(text)
    return (sum(not word.isascii() for word in words) / len(words) if words else 0.0), len(words)


# Abbreviations that end in a dot but do not end a sentence ("TS. Nguyễn", "Mr. Smith", "v.v. và").
_ABBREVIATIONS = {
    "tp", "tt", "ts", "ths", "th.s", "gs", "pgs", "pgs.ts", "gs.ts", "bs", "ks", "ls", "nxb", "q", "p", "st",
    "mr", "mrs", "ms", "dr", "prof", "jr", "sr", "st", "no", "vs", "etc", "v.v", "tr", "tx", "h", "ông", "bà",
}  # fmt: skip
_OPEN_QUOTES = "“«‘"
_CLOSE_QUOTES = "”»’"
_TRAILERS = "\"”’'»)]"


def _ends_with_abbreviation(chunk: str) -> bool:
    match = re.search(r"(\S+)\.$", chunk)
    if not match:
        return False
    word = match.group(1).lstrip("(\"“'‘").lower()
    # A single capital letter is an initial ("J. Biden"); a known abbreviation never ends a sentence.
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def split_sentences(text: str) -> list[str]:
    """Split text into sentences: at . ! ? … followed by space and a capital, digit or quote; never inside a
    quotation ('Ông nói: "Tôi đồng ý." Xong.' is two sentences, the quote whole); never after an abbreviation
    or initial. Dates (3/4), decimals (3,5 / 3.5) and TP.HCM hold no space after the dot, so they never split.
    Paragraph breaks (newlines) always split.

    Why not underthesea's sent_tokenize (Apache-2.0): on 'Ông Lavrov nói “Moskva sẵn sàng. Nhưng ...” Kiev
    bác bỏ.' it cuts inside the quotation and starts the next sentence with the closing quote, which splits
    a quoted stance from the speaker it belongs to.
    """
    sentences: list[str] = []
    for paragraph in normalize(text).split("\n"):
        if paragraph:
            sentences.extend(piece for sentence in _split_paragraph(paragraph) for piece in _cap(sentence))
    return sentences


MAX_SENTENCE_CHARS = 1500  # real sentences stay far below; a run-on dump would stall the segmenter


def _cap(sentence: str) -> list[str]:
    """Cut an overlong 'sentence' (a page with no punctuation) at spaces into pieces of bounded length."""
    pieces = []
    while len(sentence) > MAX_SENTENCE_CHARS:
        cut = sentence.rfind(" ", 0, MAX_SENTENCE_CHARS)
        cut = cut if cut > 0 else MAX_SENTENCE_CHARS
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [piece for piece in [*pieces, sentence] if piece]


def _split_paragraph(paragraph: str, quotes: bool = True) -> list[str]:
    out: list[str] = []
    start = 0
    depth = 0  # inside “...” (curly quotes nest) or "..." (straight quotes toggle)
    straight_open = False
    i = 0
    n = len(paragraph)
    while i < n:
        char = paragraph[i]
        if not quotes and char in _OPEN_QUOTES + _CLOSE_QUOTES + '"':
            pass
        elif char in _OPEN_QUOTES:
            depth += 1
        elif char in _CLOSE_QUOTES:
            depth = max(0, depth - 1)
        elif char == '"' and depth and not straight_open:
            depth -= 1  # “...": pages mix curly and straight quotes
        elif char == '"':
            straight_open = not straight_open
        elif char in ".!?…" and depth == 0 and not straight_open:
            end = i + 1
            while end < n and paragraph[end] in ".!?…":
                end += 1
            while end < n and paragraph[end] in _TRAILERS and paragraph[end] != '"':
                end += 1  # a straight quote here would open a new quotation, not close one
            # Only the last word matters for an abbreviation; slicing from `start` would be quadratic.
            if _boundary_after(paragraph, end) and not (char == "." and _ends_with_abbreviation(paragraph[max(start, i - 12) : i + 1])):
                out.append(paragraph[start:end].strip())
                start = end
            i = end
            continue
        elif char in ".!?…" and (depth or straight_open):
            # Inside a quote: a boundary only where the quote closes right after the punctuation.
            end = i + 1
            while end < n and paragraph[end] in ".!?…":
                end += 1
            if end < n and (paragraph[end] in _CLOSE_QUOTES or paragraph[end] == '"'):
                if paragraph[end] == '"' and straight_open:
                    straight_open = False
                else:
                    depth = max(0, depth - 1)
                end += 1
                while end < n and paragraph[end] in _TRAILERS:
                    end += 1
                if depth == 0 and not straight_open and _boundary_after(paragraph, end):
                    out.append(paragraph[start:end].strip())
                    start = end
                i = end
                continue
        i += 1
    tail = paragraph[start:].strip()
    if tail and quotes and (depth or straight_open):
        out.extend(_split_paragraph(tail, quotes=False))  # a quote never closed: split as if it were not there
    elif tail:
        out.append(tail)
    return [sentence for sentence in out if sentence]


def _boundary_after(paragraph: str, end: int) -> bool:
    """A sentence ends where whitespace follows and the next word starts like a sentence."""
    if end >= len(paragraph):
        return True
    if not paragraph[end].isspace():
        return False
    while end < len(paragraph) and paragraph[end].isspace():
        end += 1
    if end == len(paragraph):
        return True
    first = paragraph[end]
    return first.isupper() or first.isdigit() or first in "\"“‘'«([-–—•"
