"""The *Anteprima* page: what the newest items of a feed would become on each of its channels,
and whether each would be posted and why. It changes no state: nothing is recorded as seen,
nothing is queued.

The decision and the text are `channel-bridge preview`'s (`bridge.preview.newest_previews`,
which asks `bridge.verdict.decide`), each alert shown as *In coda* shows it
(`views.phone_preview`). Only the reading of the feed and the Italian words are here.

A configured feed is fetched as the daemon fetches it (its fetcher, no conditional request,
so the body always comes) and judged against what the state knows of it. A pasted address is
someone's choice of where the daemon connects: it is fetched only over http(s), only from
public addresses (the fetcher's page client, `bridge.addresses.PublicOnlyTransport`, every
redirect hop included), with the same time limit and size cap as feeds, and judged as a feed
with the built-in settings already polled once (so each item's fate is shown, not the first
poll's backfill), posting to every channel the configured feeds post to. Either way the parse
runs in the daemon's parser processes, off the event loop, under their deadline.

Every failure is a `PreviewError`: one Italian line for the page, the English detail and hint
for the log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

from bridge.article import ArticleReader
from bridge.config import Config, FeedConfig, format_duration
from bridge.console.views import phone_preview, when
from bridge.fetch import (
    ACCEPT,
    Fetcher,
    FetchError,
    FetchRefusedError,
    FetchResult,
    FetchTimeoutError,
    FetchTooLargeError,
)
from bridge.item import Item
from bridge.parse import ParseError
from bridge.parser_pool import ParserPool
from bridge.poll import memory_of
from bridge.preview import ItemPreview, newest_previews, quiet_hours_end
from bridge.store import Store
from bridge.verdict import (
    FILTERED,
    HELD,
    NOTHING_TO_SAY,
    POST,
    RECORD,
    SAME_NEWS,
    SEEN,
    STATE_LOST,
    TOO_OLD,
    FeedMemory,
    Verdict,
)

DEFAULT_COUNT = 5
MAX_COUNT = 20
MAX_URL_LENGTH = 2000
PASTED_FEED_ID = "anteprima"  # never a configured feed's: the state is not asked about it by id


class Previewer(Protocol):
    """What the page reads of the running daemon: its config, state, clock, and the fetcher,
    parser processes and article reader its polls use."""

    @property
    def config(self) -> Config: ...

    @property
    def store(self) -> Store: ...

    @property
    def fetcher(self) -> Fetcher: ...

    @property
    def parser(self) -> ParserPool: ...

    @property
    def articles(self) -> ArticleReader: ...

    def now(self) -> datetime: ...


class PreviewError(Exception):
    """A preview that cannot be shown. `str(error)` is the Italian line for the page; `detail`
    and `hint` go to the log; `status` is the page's HTTP status."""

    def __init__(self, message: str, *, detail: str = "", hint: str = "", status: int = 400) -> None:
        super().__init__(message)
        self.detail = detail
        self.hint = hint
        self.status = status


@dataclass(frozen=True, slots=True)
class FeedChoice:
    id: str
    name: str


def choices(config: Config) -> list[FeedChoice]:
    """The configured feeds, for the form's select, by name."""
    return sorted((FeedChoice(feed.id, feed.name) for feed in config.feeds), key=lambda f: f.name.casefold())


def parse_count(text: str | None) -> int:
    """How many of the newest items to show: 1 to MAX_COUNT, DEFAULT_COUNT when not given.
    Raise PreviewError otherwise."""
    if text is None or not text.strip():
        return DEFAULT_COUNT
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= MAX_COUNT:
        raise PreviewError(f"Il numero di notizie deve essere un intero da 1 a {MAX_COUNT}.",
                           detail=f"bad count {value[:20]!r}")
    return int(value)


def configured_feed(config: Config, feed_id: str | None) -> FeedConfig:
    """The configured feed `feed_id`; PreviewError for none or an unknown one."""
    if not feed_id:
        raise PreviewError("Scegliere un feed dall'elenco.", detail="no feed chosen")
    try:
        return config.feed(feed_id)
    except KeyError:
        raise PreviewError("Questo feed non è nella configurazione.", detail=f"unknown feed {feed_id[:80]!r}") \
            from None


def checked_url(text: str | None) -> str:
    """The pasted address, trimmed: http(s), a host, no user name or password, at most
    MAX_URL_LENGTH characters. Raise PreviewError otherwise (nothing is fetched)."""
    url = (text or "").strip()
    if not url:
        raise PreviewError("Incollare l'indirizzo di un feed (http:// o https://).", detail="no url")
    if len(url) > MAX_URL_LENGTH:
        raise PreviewError(f"Indirizzo troppo lungo (più di {MAX_URL_LENGTH} caratteri).",
                           detail=f"url of {len(url)} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError:
        raise PreviewError("Indirizzo non valido.", detail="unparsable url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise PreviewError("Si leggono solo indirizzi http:// o https://.", detail="not an http(s) url")
    if not host:
        raise PreviewError("Nell'indirizzo manca il nome del sito.", detail="no host in the url")
    if parts.username is not None or parts.password is not None:
        raise PreviewError("L'indirizzo non può contenere nome utente o password.",
                           detail="url with credentials")
    if any(ord(ch) < 33 for ch in url):
        raise PreviewError("L'indirizzo contiene spazi o caratteri di controllo.",
                           detail="control characters in the url")
    return url


def pasted_feed(config: Config, url: str) -> FeedConfig:
    """The feed a pasted address is judged as: the built-in settings (`bridge.config`'s
    defaults), its own domain for links, every channel the configured feeds post to."""
    channels = tuple(dict.fromkeys(name for feed in config.feeds for name in feed.channels))
    host = urlsplit(url).hostname or url
    return FeedConfig(id=PASTED_FEED_ID, name=host, url=url, interval=timedelta(minutes=5), channels=channels,
                      max_age=timedelta(days=7), backfill=0)


def failure(exc: FetchError | ParseError) -> PreviewError:
    """What the page says of a feed that could not be read."""
    detail, hint = str(exc), exc.hint
    if isinstance(exc, FetchRefusedError):
        return PreviewError("Indirizzo rifiutato: si leggono solo siti pubblici, non indirizzi della rete interna "
                            "o di questa macchina.", detail=detail, hint=hint, status=403)
    if isinstance(exc, FetchTimeoutError):
        return PreviewError("Il sito non ha risposto in tempo: riprovare più tardi.", detail=detail, hint=hint,
                            status=502)
    if isinstance(exc, FetchTooLargeError):
        return PreviewError("Il contenuto è troppo grande per essere un feed.", detail=detail, hint=hint, status=502)
    if isinstance(exc, ParseError):
        return PreviewError("A questo indirizzo non c'è un feed RSS o Atom leggibile.", detail=detail, hint=hint,
                            status=502)
    if exc.status is not None:
        return PreviewError(f"Il sito ha risposto con un errore ({detail}).", detail=detail, hint=hint, status=502)
    return PreviewError(f"Impossibile leggere il feed: {detail}.", detail=detail, hint=hint, status=502)


async def preview_configured(daemon: Previewer, feed_id: str | None, count: int) -> dict[str, Any]:
    """The page's result for the configured feed `feed_id`: its newest `count` items as the
    daemon would judge them now. Raise PreviewError."""
    config = daemon.config
    feed = configured_feed(config, feed_id)
    try:
        fetched = await daemon.fetcher.fetch(feed.url)
    except FetchError as exc:
        raise failure(exc) from exc
    items = await _items(daemon, feed, fetched)
    memory = memory_of(daemon.store.feed_state(feed.id), daemon.store)
    return await _result(daemon, feed, items, memory, count, pasted=False)


async def preview_pasted(daemon: Previewer, url_text: str | None, count: int) -> dict[str, Any]:
    """The page's result for a pasted feed address (see the module). Raise PreviewError."""
    url = checked_url(url_text)
    feed = pasted_feed(daemon.config, url)
    try:
        fetched = await daemon.fetcher.fetch_page(url, guard=_web_only, accept=ACCEPT)
    except FetchError as exc:
        raise failure(exc) from exc
    items = await _items(daemon, feed, fetched)
    memory = FeedMemory(primed=frozenset(feed.channels), seen_by=daemon.store.seen_by)
    return await _result(daemon, feed, items, memory, count, pasted=True)


def _web_only(url: str) -> str | None:
    """Any http(s) hop: where it may connect is the public-only transport's to say."""
    return None if urlsplit(url).scheme.lower() in ("http", "https") else "not an http(s) address"


async def _items(daemon: Previewer, feed: FeedConfig, fetched: FetchResult) -> Sequence[Item]:
    if fetched.not_modified:  # an empty answer: some CMSs give one while rebuilding their cache
        raise PreviewError("Il sito ha risposto senza contenuto: riprovare tra qualche minuto.",
                           detail="empty answer", status=502)
    try:
        parsed = await daemon.parser.parse(feed.id, fetched.body, url=fetched.final_url, headers=fetched.headers)
    except ParseError as exc:
        raise failure(exc) from exc
    return parsed.items


async def _result(daemon: Previewer, feed: FeedConfig, items: Sequence[Item], memory: FeedMemory, count: int,
                  *, pasted: bool) -> dict[str, Any]:
    config, now = daemon.config, daemon.now()
    previews = await newest_previews(config, feed, items, memory=memory, now=now, reader=daemon.articles,
                                     limit=count)
    return result_page(config, feed, previews, len(items), now, pasted=pasted)


def result_page(config: Config, feed: FeedConfig, previews: Sequence[ItemPreview], total: int, now: datetime,
                *, pasted: bool) -> dict[str, Any]:
    """The result as plain data for the template. Pure."""
    tz = config.bridge.timezone
    return {
        "feed_id": feed.id,
        "feed_name": feed.name,
        "url": feed.url,
        "pasted": pasted,
        "total": total,
        "now": when(now, tz),
        "entries": [{
            "title": preview.item.title or "(senza titolo)",
            "link": preview.item.link if (preview.item.link or "").startswith(("https://", "http://")) else None,
            "link_text": preview.item.link or "",
            "published": when(preview.item.published, tz),
            "channels": [_channel_row(config, feed, verdict, now) for verdict in preview.verdicts],
        } for preview in previews],
    }


def _channel_row(config: Config, feed: FeedConfig, verdict: Verdict, now: datetime) -> dict[str, Any]:
    channel = config.channels[verdict.channel]
    label, why, detail = verdict_words(verdict, config, feed, now)
    return {
        "channel": verdict.channel,
        "type": channel.type,
        "outcome": verdict.outcome.replace(" ", "-"),
        "label": label,
        "why": why,
        "detail": detail,
        "urgent": verdict.alert.urgent if verdict.alert is not None else False,
        "preview": phone_preview(channel, verdict.alert) if verdict.alert is not None else None,
    }


def verdict_words(verdict: Verdict, config: Config, feed: FeedConfig, now: datetime) -> tuple[str, str, str]:
    """(what would happen, why, the decision's own words where they say more) of `verdict`,
    for the office, in Italian. The decision is `decide`'s; this only tells it."""
    outcome = verdict.outcome
    if outcome == POST:
        until = quiet_hours_end(verdict, config, now)
        if until is not None:
            return ("sarebbe pubblicato alla fine delle ore di silenzio",
                    f"notizia nuova; partirebbe il {when(until, config.bridge.timezone)}", "")
        urgent = verdict.alert is not None and verdict.alert.urgent
        return "sarebbe pubblicato", "notizia nuova per questo canale" + (" (urgente)" if urgent else ""), ""
    if outcome == RECORD:
        if verdict.reason == STATE_LOST:
            return ("registrato, non pubblicato",
                    "primo controllo dopo la perdita dello stato: si registra tutto e non si pubblica nulla", "")
        return ("registrato, non pubblicato",
                f"primo controllo del feed: si pubblicano solo le {feed.backfill} più recenti (backfill)", "")
    if outcome == SEEN:
        return "già visto", "questa notizia è già stata pubblicata o registrata per questo canale", ""
    if outcome == SAME_NEWS:
        return "non pubblicato", "è la stessa notizia di un'altra voce del feed", verdict.reason
    if outcome == FILTERED:
        return "non pubblicato", "esclusa dalle parole include/exclude del feed", ""
    if outcome == TOO_OLD:
        return "non pubblicato", f"più vecchia di max_age ({format_duration(feed.max_age)})", ""
    if outcome == HELD:
        if verdict.item.link is None:
            return "trattenuto", "non ha un link http(s) al sito del comune", verdict.reason
        if verdict.reason == NOTHING_TO_SAY:
            return "trattenuto", "non ha né titolo né testo: l'avviso sarebbe solo il link", ""
        return "trattenuto", "il link, o un indirizzo nel titolo, porta fuori dai domini del feed", verdict.reason
    return outcome, verdict.reason, ""
