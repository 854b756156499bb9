"""A feed server on loopback whose feeds attack the bridge: what a daemon meets in years of polling.

    server = HostileServer(secret_file=tmp / "secret.txt")   # the file the XXE feed points at
    server.url("entity_bomb")     # each kind in KINDS is served at /<kind>.xml
    server.generation = 2         # some kinds add new items in their second generation
    server.requests()             # paths requested so far (an XXE probe would show here)
    server.close()

The kinds (`KINDS`, with a one-line description each) are content attacks the fault switches of
`servers.feeds` do not cover: entity bombs and external entities, charsets declared only in the
XML prolog, 10,000 items, guids repeated across items, future-dated and undated items,
dangerous and off-domain links, `<script>` and event handlers, WhatsApp markup and Telegram
HTML in titles, an 80 MB body, a feedparser-pathological author field.

Every item link that is meant to be posted is `https://www.comune.esempio.it/<kind>/<n>`; items
whose link must never be posted carry "NEVER" in their title. `unsafe_reasons` is the shared
judgement of a posted text (tests and bench/hostile.py): raw markup, a dangerous scheme, a
link off the comune's domain, an expanded entity, the XXE marker.

Everything is bounded: threads are daemons, streamed bodies stop on `close()`.
"""

from __future__ import annotations

import email.utils
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

DOMAIN = "comune.esempio.it"
SITE = f"https://www.{DOMAIN}"
XXE_MARKER = "XXE-MARKER-3f9c1d"  # what the secret file holds; must never reach a post or a log
BOMB_UNIT = "LOL"  # the entity bomb's payload; a post with many of them means it was expanded
MANY_ITEMS = 10_000
BODY_80MB = 80 * 1024 * 1024
AUTHOR_LENGTH = 150_000  # feedparser 6.0.14 needs minutes for this (quadratic e-mail regex)
NEVER = "NEVER"  # in the title of every item that must not be posted


@dataclass(frozen=True, slots=True)
class Answer:
    """What the server sends for one request: a status, headers, a body (bytes or a stream)."""

    status: int
    content_type: str
    body: bytes | Callable[[], Iterator[bytes]]
    length: int | None = None  # Content-Length of a streamed body; None: close-delimited


class HostileServer:
    """An HTTP/1.1 server on 127.0.0.1 (free port) serving every kind of `KINDS` at /<kind>.xml."""

    def __init__(self, *, secret_file: Path | None = None, now: datetime | None = None) -> None:
        self.secret_file = secret_file
        self.now = now or datetime.now(UTC).replace(microsecond=0)
        self.generation = 1
        self.author_length = AUTHOR_LENGTH
        self.body_size = BODY_80MB
        self._lock = threading.Lock()
        self._requests: list[str] = []
        self._stopping = threading.Event()
        handler = type("_BoundHandler", (_Handler,), {"hostile": self})
        self._httpd = _QuietServer(("127.0.0.1", 0), handler)
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"hostile-server-{self.port}", daemon=True)
        self._thread.start()

    def __enter__(self) -> HostileServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def url(self, kind: str) -> str:
        """The URL of a kind (or of any path, e.g. the XXE probe)."""
        path = kind if kind.startswith("/") else f"/{kind}.xml"
        return f"http://127.0.0.1:{self.port}{path}"

    def requests(self) -> list[str]:
        """Paths requested so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def close(self) -> None:
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # Called from handler threads.

    def _answer(self, path: str) -> Answer | None:
        with self._lock:
            self._requests.append(path)
        name = path.removeprefix("/").removesuffix(".xml")
        kind = KINDS.get(name)
        return kind.build(self) if kind is not None else None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-answer is what deadlines and caps are for."""


class _Handler(BaseHTTPRequestHandler):
    hostile: HostileServer
    protocol_version = "HTTP/1.1"
    server_version = "HostileServer/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # http.server's naming
        answer = self.hostile._answer(self.path.split("?", 1)[0])
        if answer is None:
            answer = Answer(404, "text/plain", b"not found\n")
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            if isinstance(answer.body, bytes):
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
                return
            if answer.length is not None:
                self.send_header("Content-Length", str(answer.length))
            else:
                self.send_header("Connection", "close")
            self.end_headers()
            for chunk in answer.body():
                if self.hostile._stopping.is_set():
                    break
                self.wfile.write(chunk)
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


# -- building feeds -------------------------------------------------------------------------


def _date(moment: datetime) -> str:
    return email.utils.format_datetime(moment)


def _item(title: str, link: str | None, *, description: str = "", guid: str | None = None,
          date: str | None = None, raw_title: bool = False, extra: str = "") -> str:
    """One <item>; `raw_title` puts the title in verbatim (it is already XML)."""
    parts = ["<item>", f"<title>{title if raw_title else escape(title)}</title>"]
    if link is not None:
        parts.append(f"<link>{escape(link)}</link>")
    if description:
        parts.append(f"<description>{escape(description)}</description>")
    if guid is not None:
        parts.append(f'<guid isPermaLink="false">{escape(guid)}</guid>')
    if date is not None:
        parts.append(f"<pubDate>{date}</pubDate>")
    parts.append(extra)
    parts.append("</item>")
    return "".join(parts)


def _rss(items: Iterable[str], *, doctype: str = "", encoding: str = "UTF-8", title: str = "Comune di Esempio") -> str:
    head = (f'<?xml version="1.0" encoding="{encoding}"?>\n{doctype}'
            '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
            f"<title>{escape(title)}</title><link>{SITE}</link><description>Notizie</description>")
    return head + "\n".join(items) + "</channel></rss>\n"


def _xml(body: str, *, encoding: str = "utf-8", content_type: str = "application/rss+xml; charset=utf-8") -> Answer:
    return Answer(200, content_type, body.encode(encoding))


def link(kind: str, n: int) -> str:
    """The on-domain link of item `n` of `kind`: the only links that may ever be posted."""
    return f"{SITE}/{kind}/{n}/"


def _recent(server: HostileServer, hours: float) -> str:
    return _date(server.now - timedelta(hours=hours))


def _entity_bomb(server: HostileServer) -> Answer:
    # "Billion laughs": 10 levels of ten references, 3 * 10**9 bytes if expanded.
    levels = [f'<!ENTITY l0 "{BOMB_UNIT}">']
    levels += [f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    doctype = "<!DOCTYPE rss [\n" + "\n".join(levels) + "\n]>\n"
    items = [
        _item("Bomba &l9; di entità", link("entity_bomb", 1), raw_title=True, date=_recent(server, 2),
              extra="<description>&l9;</description>"),
        _item("Avviso regolare sulla raccolta dei rifiuti", link("entity_bomb", 2), date=_recent(server, 1),
              description="La raccolta dei rifiuti cambia giorno da lunedì prossimo."),
    ]
    return _xml(_rss(items, doctype=doctype))


def _external_entity(server: HostileServer) -> Answer:
    target = server.secret_file.as_uri() if server.secret_file else "file:///etc/hostname"
    doctype = ("<!DOCTYPE rss [\n"
               f'<!ENTITY file SYSTEM "{target}">\n'
               f'<!ENTITY remote SYSTEM "{server.url("/xxe-probe")}">\n'
               "]>\n")
    items = [
        _item("Avviso &file; &remote; importante", link("external_entity", 1), raw_title=True,
              date=_recent(server, 2), extra="<description>Testo &file; &remote; della notizia.</description>"),
    ]
    return _xml(_rss(items, doctype=doctype))


LATIN1_TITLE = "Città più bella: caffè e unità"
CP1252_TITLE = "“Festa” dell’unità: 5 € a persona"


def _latin1_prolog(server: HostileServer) -> Answer:
    # Charset only in the prolog, and text/xml without charset (RFC 3023 would say us-ascii).
    items = [_item(LATIN1_TITLE, link("latin1_prolog", 1), date=_recent(server, 1),
                   description="L'unità di crisi è in città.")]
    return _xml(_rss(items, encoding="ISO-8859-1"), encoding="latin-1", content_type="text/xml")


def _cp1252_prolog(server: HostileServer) -> Answer:
    items = [_item(CP1252_TITLE, link("cp1252_prolog", 1), date=_recent(server, 1),
                   description="Ingresso a 5 € per l’intera giornata.")]
    return _xml(_rss(items, encoding="windows-1252"), encoding="cp1252", content_type="application/rss+xml")


def many_items_title(n: int) -> str:
    return f"Notizia numero {n} dall'archivio comunale"


def _many_items(server: HostileServer) -> Answer:
    # Newest first; generation 2 adds one new item on top.
    newest = MANY_ITEMS + (1 if server.generation >= 2 else 0)
    items = [
        _item(many_items_title(n), link("many_items", n), guid=f"many-{n}",
              date=_date(server.now - timedelta(minutes=MANY_ITEMS + 1 - n)),
              description=f"Testo breve della notizia numero {n}.")
        for n in range(newest, 0, -1)
    ]
    return _xml(_rss(items))


REPEATED_GUID = "https://www.comune.esempio.it/?p=0"


def repeated_guid_title(n: int) -> str:
    return f"Comunicato {n} con lo stesso identificativo"


def _repeated_guids(server: HostileServer) -> Answer:
    # A CMS bug seen in the wild: every item carries the same guid.
    count = 5 if server.generation >= 2 else 3
    items = [_item(repeated_guid_title(n), link("repeated_guids", n), guid=REPEATED_GUID,
                   date=_recent(server, 10 - n), description=f"Il comunicato numero {n}.")
             for n in range(count, 0, -1)]
    return _xml(_rss(items))


def _odd_dates(server: HostileServer) -> Answer:
    items = [
        _item("Evento annunciato per il 2099", link("odd_dates", 1), date=_date(datetime(2099, 1, 1, tzinfo=UTC)),
              description="Una data nel futuro lontano."),
        _item("Avviso senza data", link("odd_dates", 2), description="Questo avviso non ha data."),
        _item("Avviso con data illeggibile", link("odd_dates", 3), date="trentadue di marzo",
              description="La data non si legge."),
    ]
    return _xml(_rss(items))


def _script_links(server: HostileServer) -> Answer:
    items = [
        _item(f"{NEVER} javascript", "javascript:alert(document.cookie)", date=_recent(server, 5)),
        _item(f"{NEVER} data", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==", date=_recent(server, 4)),
        _item(f"{NEVER} vbscript", "vbscript:msgbox(1)", date=_recent(server, 3)),
        _item(f"{NEVER} javascript maiuscolo", " JaVaScRiPt:alert(1)", date=_recent(server, 2)),
        _item("Notizia con un link regolare tra link pericolosi", link("script_links", 1), date=_recent(server, 1),
              description="Questa notizia ha un link al sito del Comune."),
    ]
    return _xml(_rss(items))


OFF_DOMAIN_LINKS = (
    "https://www.comune.esempio.it.evil.example/notizie/1/",  # look-alike: the real name as a subdomain
    "https://comune-esempio.it/notizie/2/",  # look-alike: a dash
    "https://www.comune.esernpio.it/notizie/3/",  # look-alike: rn for m
    "https://www.comune.esempio.it@evil.example/notizie/4/",  # user info disguise
    "//evil.example/notizie/5/",  # protocol-relative, off the domain
    "https://bit.ly/3xyzabc",  # a shortener
)


def _offdomain_links(server: HostileServer) -> Answer:
    items = [_item(f"{NEVER} link esterno {n}", url, date=_recent(server, 10 - n))
             for n, url in enumerate(OFF_DOMAIN_LINKS, start=1)]
    items.append(_item("Notizia con un link regolare tra link esterni", link("offdomain_links", 1),
                       date=_recent(server, 1), description="Anche questa notizia porta al sito del Comune."))
    return _xml(_rss(items))


def _script_markup(server: HostileServer) -> Answer:
    items = [
        _item("<script>alert(1)</script>Chiusura scuole per neve", link("script_markup", 1), date=_recent(server, 4),
              description='<img src=x onerror="alert(1)">Le scuole restano chiuse <b onclick="steal()">domani</b>.'),
        _item("&lt;script&gt;alert(2)&lt;/script&gt; Mercato spostato", link("script_markup", 2),
              date=_recent(server, 3), description="&lt;iframe src=javascript:alert(3)&gt; Il mercato si sposta."),
        _item('<a href="javascript:alert(4)" onmouseover="alert(5)">Bando</a> per le borse di studio',
              link("script_markup", 3), date=_recent(server, 2),
              extra="<content:encoded><![CDATA[<script>document.location='https://evil.example'</script>"
                    "<p onload=\"x()\">Il bando scade il 30 giugno.</p>]]></content:encoded>"),
        _item('<svg onload="alert(6)">Avviso</svg> <style>body{display:none}</style>sulla viabilità',
              link("script_markup", 4), date=_recent(server, 1), description="<noscript>x</noscript>Strade chiuse."),
    ]
    return _xml(_rss(items))


def _whatsapp_markup(server: HostileServer) -> Answer:
    items = [
        _item("*URGENTE* _chiusura_ ~via Roma~ ```codice``` `mono`", link("whatsapp_markup", 1),
              date=_recent(server, 2), description="Il *mercato* _non_ si terrà ~sabato~."),
        _item("Tasse: *** ___ ~~~ * _ ~", link("whatsapp_markup", 2), date=_recent(server, 1),
              description="Scadenza *IMU* il 16_12."),
    ]
    return _xml(_rss(items))


def _telegram_html(server: HostileServer) -> Answer:
    items = [
        _item('<b>Grassetto</b> & <a href="https://evil.example">link</a> <i>non chiuso',
              link("telegram_html", 1), date=_recent(server, 3), description="A & B <tg-spoiler>x</tg-spoiler>."),
        _item("Temperature 3 < 5 > 2 & &amp; &lt;b&gt; &#60;i&#62;", link("telegram_html", 2),
              date=_recent(server, 2), description="Valori: x < y, z > w & altri."),
        _item("&amp;lt;pre&amp;gt;doppio escape&amp;lt;/pre&amp;gt; orari uffici", link("telegram_html", 3),
              date=_recent(server, 1), raw_title=True, description="Gli uffici aprono alle 9."),
    ]
    return _xml(_rss(items))


def _body_80mb(server: HostileServer) -> Answer:
    # A well-formed start, then one description that never ends: only a cap on what is read
    # (there is no Content-Length to refuse up front) stops it.
    size = server.body_size
    head = _rss([]).split("</channel>")[0].encode() + b"<item><title>Enorme</title><description>"

    def stream() -> Iterator[bytes]:
        yield head
        block = b"A" * (1024 * 1024)
        sent = len(head)
        while sent < size:
            piece = block[: size - sent]
            yield piece
            sent += len(piece)

    return Answer(200, "application/rss+xml", stream)


def _pathological_author(server: HostileServer) -> Answer:
    items = [_item("Autore patologico", link("pathological_author", 1), date=_recent(server, 1),
                   extra=f"<author>{'a' * server.author_length}</author>")]
    return _xml(_rss(items))


@dataclass(frozen=True, slots=True)
class Kind:
    name: str
    description: str
    build: Callable[[HostileServer], Answer]


KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind("entity_bomb", "billion laughs in the DOCTYPE", _entity_bomb),
        Kind("external_entity", "SYSTEM entities: a local file and a URL", _external_entity),
        Kind("latin1_prolog", "ISO-8859-1 declared only in the prolog, text/xml without charset", _latin1_prolog),
        Kind("cp1252_prolog", "windows-1252 declared only in the prolog", _cp1252_prolog),
        Kind("many_items", f"{MANY_ITEMS:,} items", _many_items),
        Kind("repeated_guids", "every item with the same guid", _repeated_guids),
        Kind("odd_dates", "future-dated, undated and unreadable dates", _odd_dates),
        Kind("script_links", "javascript:, data:, vbscript: links", _script_links),
        Kind("offdomain_links", "links off the comune's domain and look-alikes", _offdomain_links),
        Kind("script_markup", "<script>, event handlers, iframes in titles and text", _script_markup),
        Kind("whatsapp_markup", "WhatsApp markup characters in titles and text", _whatsapp_markup),
        Kind("telegram_html", "HTML and stray < > & in titles", _telegram_html),
        Kind("body_80mb", "an 80 MB body without Content-Length", _body_80mb),
        Kind("pathological_author", "an author field that makes feedparser quadratic", _pathological_author),
    )
}


# -- judging what was posted ------------------------------------------------------------------

_URL_RE = re.compile(r"(?:https?|ftp)://[^\s<>\"']+", re.I)
_TAG_RE = re.compile(r"<\s*/?\s*(?:script|iframe|img|svg|style|a|b|i|pre|noscript|object|embed)\b", re.I)
_HANDLER_RE = re.compile(r"\bon[a-z]+\s*=", re.I)
_SCHEME_RE = re.compile(r"\b(?:javascript|vbscript|data)\s*:", re.I)


def unsafe_reasons(text: str, *, html_allowed: Iterable[str] = ()) -> list[str]:
    """Why a posted `text` is unsafe, empty when it is fine.

    Unsafe: a tag that could run or inject markup (`<script`, `<img`, ..., except the tags in
    `html_allowed`, e.g. Telegram's own `b`), an event handler attribute, a javascript:/data:/
    vbscript: scheme, a URL whose host is not the comune's domain, an expanded entity bomb,
    the XXE marker, or NEVER (an item that must not be posted).
    """
    reasons = []
    allowed = {tag.lower() for tag in html_allowed}
    for match in _TAG_RE.finditer(text):
        tag = re.sub(r"[<\s/]", "", match.group(0)).lower()
        if tag not in allowed:
            reasons.append(f"raw tag {match.group(0)!r}")
    if _HANDLER_RE.search(text):
        reasons.append("event handler attribute")
    if _SCHEME_RE.search(text):
        reasons.append("dangerous URL scheme")
    for url in _URL_RE.findall(text):
        host = re.sub(r"^[a-z]+://", "", url, flags=re.I).split("/", 1)[0].lower()
        if "@" in host or not (host == DOMAIN or host.endswith("." + DOMAIN)):
            reasons.append(f"link off the comune's domain: {url}")
    if text.count(BOMB_UNIT) > 3:
        reasons.append("entity bomb expanded")
    if XXE_MARKER in text:
        reasons.append("external entity read")
    if NEVER in text:
        reasons.append("an item that must never be posted")
    return reasons
