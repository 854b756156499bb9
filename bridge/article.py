"""The lead of an article page, for thin feed items. The one I/O module of the alert text.

When a feed item has no whole sentence (`bridge.summary.is_thin`), the daemon may fetch the
item's page, once, and summarise its lead instead. `extract_lead` is pure (HTML in, plain
text out); `ArticleReader` is the thin shell: one `Fetcher.fetch_page` (same time limit,
size cap and redirect cap as feeds), where the link guard (`bridge.links.link_problem`: the
feed's own domains, ports included) passes the page's URL and every redirect target before
its request leaves, and the connection goes only to a public address (`bridge.addresses`);
and a per-URL cache so a page is never fetched twice.

Extraction is BeautifulSoup over the page, in this order (Italian comune sites are built on
a few templates, and the Design Comuni ones name their parts):

1. the page's short description, when it is a real sentence: the Design Comuni / Plone
   description under the title, `og:description`, `meta name=description`;
2. the first real paragraph of the description section (`article#descrizione`, the
   Design Comuni WordPress and Drupal themes) or else of the main text (`main`, `article`,
   `[role=main]`, `#content`), outside navigation, header, footer, asides and cookie bars;
3. the meta description as it is (the summariser decides whether it reads as a lead line).

A *real paragraph* has a whole sentence (`bridge.sentences.is_complete_sentence`) of at
least six words. Measured against readability-lxml and trafilatura in bench/article.py:
same leads on the sample pages, no extra dependency (bs4 is already used for feed HTML).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from functools import partial

import structlog
from bs4 import BeautifulSoup, Tag

from bridge.fetch import Fetcher, FetchError
from bridge.links import link_problem
from bridge.sentences import is_complete_sentence, split_sentences
from bridge.text import html_to_text, strip_boilerplate

__all__ = ["ArticleReader", "extract_lead"]

log = structlog.get_logger("bridge.article")

_MIN_WORDS = 6
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Containers whose paragraphs are never the article's lead.
_CHROME = ("nav", "header", "footer", "aside", "form", "noscript", "script", "style", "template")
_CHROME_HINTS = ("cookie", "breadcrumb", "share", "social", "related", "widget", "menu", "skip", "banner")
_DESCRIPTION_SELECTORS = (
    ".documentDescription",  # Plone
    "p.subtitle",
    ".lead",
    ".abstract",
    "h1 ~ h2",  # OpenCity: the abstract is the h2 under the title
    "h1 + p",  # Design Comuni WordPress: descrizione_breve right under the title
)
_MAIN_SELECTORS = ("article#descrizione", "main", "[role=main]", "article", "#content", "#main", "body")


def _text(node: Tag) -> str:
    return " ".join(html_to_text(str(node)).split())


def _real_sentence(text: str) -> bool:
    sentences = split_sentences(text)
    return bool(sentences) and is_complete_sentence(sentences[0]) and len(sentences[0].split()) >= _MIN_WORDS


def _is_chrome(node: Tag) -> bool:
    for parent in [node, *node.parents]:
        if not isinstance(parent, Tag):
            continue
        if parent.name in _CHROME:
            return True
        # A class or id *starting* with a hint: "cookie-bar", "breadcrumb-container", but not
        # the Design Comuni layout class "row-column-menu-left" around the article.
        marks = [str(parent.get("id") or "").lower(), *(c.lower() for c in parent.get("class") or [])]
        if any(mark.startswith(_CHROME_HINTS) for mark in marks):
            return True
    return False


def _meta(soup: BeautifulSoup, *names: str) -> Iterable[str]:
    for name in names:
        for tag in soup.find_all("meta", attrs={"property": name}) + soup.find_all("meta", attrs={"name": name}):
            content = tag.get("content")
            if isinstance(content, str) and content.strip():
                yield " ".join(html_to_text(content).split())


def extract_lead(page: str) -> str:
    """Return the plain-text lead of an article page (HTML), or "" when it has none.

    See the module docstring for the order. The text is normalised like feed text
    (`html_to_text`, `strip_boilerplate`): plain, NFKC, whitespace collapsed, one paragraph.
    Never raises on malformed HTML. Deterministic.
    """
    soup = BeautifulSoup(page, "html.parser")
    descriptions: list[str] = []
    for selector in _DESCRIPTION_SELECTORS:
        for node in soup.select(selector):
            if not _is_chrome(node):
                descriptions.append(_text(node))
    descriptions.extend(_meta(soup, "og:description", "description"))
    for text in descriptions:
        text = strip_boilerplate(text)
        if _real_sentence(text) and not text.endswith(("…", "...")):
            return text
    containers = [soup.select_one(selector) for selector in _MAIN_SELECTORS]
    for container in [*containers, soup]:  # a fragment without <body> is its own container
        if container is None:
            continue
        for paragraph in container.find_all(["p", "div"]):
            if paragraph.find(["p", "div"]) is not None or _is_chrome(paragraph):
                continue  # only leaf blocks; the page's chrome never leads
            text = strip_boilerplate(_text(paragraph))
            if _real_sentence(text):
                return text
    for text in _meta(soup, "description", "og:description"):
        return strip_boilerplate(text)
    return ""


class ArticleReader:
    """Fetches article pages through `Fetcher.fetch_page` and returns their lead, once per URL.

    The cache holds the last `cache_size` URLs, failures included ("" is cached too: a page
    that failed is not fetched again for every poll that still lists its item).
    """

    def __init__(self, fetcher: Fetcher, *, cache_size: int = 512) -> None:
        self._fetcher = fetcher
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._cache_size = cache_size

    async def lead(self, url: str, *, feed_url: str, link_domains: Iterable[str] = ()) -> str:
        """Return the lead of the page at `url` (see `extract_lead`), or "" when there is none.

        The URL, and every redirect target before it is followed, must pass the link guard for
        this feed (`bridge.links.link_problem`), and the page must come from a public address;
        a refusal, a non-HTML answer or a fetch error gives "" and a log line. Never raises
        `FetchError`.
        """
        if url in self._cache:
            self._cache.move_to_end(url)
            return self._cache[url]
        domains = tuple(link_domains)
        lead = ""
        problem = link_problem(url, feed_url=feed_url, link_domains=domains)
        if problem is None:
            try:
                result = await self._fetcher.fetch_page(
                    url, guard=partial(link_problem, feed_url=feed_url, link_domains=domains)
                )
            except FetchError as exc:
                problem = f"fetch failed: {exc}"
            else:
                content_type = result.headers.get("content-type", "").split(";")[0].strip().lower()
                if content_type not in _HTML_TYPES:
                    problem = f"not an HTML page ({content_type or 'no content type'})"
                elif not result.not_modified:
                    lead = extract_lead(_decode(result.body, result.headers.get("content-type", "")))
        if problem is not None:
            log.info("article page not used", url=url, reason=problem)
        self._cache[url] = lead
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return lead


def _decode(body: bytes, content_type: str) -> str:
    """The page as text: the charset of the Content-Type, else UTF-8, else Windows-1252."""
    charset = ""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'")
    for encoding in (charset, "utf-8"):
        if not encoding:
            continue
        try:
            return body.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            continue
    return body.decode("windows-1252", errors="replace")
