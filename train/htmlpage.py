"""HTML page → (article text, title and date): trafilatura's main-content extraction, or the tag stripper of
articles.py when trafilatura finds nothing.

trafilatura (Apache-2.0) scores the page's blocks and keeps the article: menus, cookie banners, share bars,
readers' comments, related-link lists and footers go, which plain tag stripping keeps (a reader's "Mỹ mới là
nước quyết định" in the comments would otherwise become a stance of Mỹ). It also reads the title and the
publication date from the page's metadata (Open Graph, JSON-LD, <title>, dates in the markup). The text then
goes through articles.clean_page like any other input, so "Xem thêm:" links left inside the body still go.
"""

from __future__ import annotations

import logging

from .articles import html_to_text

log = logging.getLogger(__name__)


def extract_html(page: str) -> tuple[str, dict[str, str]]:
    """(text with the title as its first line, {"extractor", and "title"/"date" when found})."""
    import trafilatura

    try:
        found = trafilatura.bare_extraction(
            page, include_comments=False, include_tables=False, include_images=False, include_links=False,
            with_metadata=True,
        )  # fmt: skip
    except Exception as err:  # noqa: BLE001 - a page that breaks the extractor must still be read, by the fallback
        log.debug("trafilatura failed (%s: %s); stripping tags instead", type(err).__name__, err)
        found = None
    body = (found.text or "").strip() if found is not None else ""
    if not body:
        return html_to_text(page), {"extractor": "tags"}
    meta = {"extractor": "trafilatura"}
    meta.update({key: value for key in ("title", "date") if (value := getattr(found, key, None))})
    lines = body.split("\n")
    if meta.get("title") and lines[0].strip() != meta["title"]:
        lines.insert(0, meta["title"])  # the headline names the countries as often as the body does
    # trafilatura writes list items as "- item"; the sentence splitter should see the item's text.
    return "\n".join(line.strip().removeprefix("- ") for line in lines), meta
