"""The staff console, served for real on loopback by `Console` on its own event loop (in a
thread), over a real `Store` in a temporary state directory and a config loaded from a real
file: what the daemon does at start, without its polls."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bridge.actions import plan_action
from bridge.approval import Action, Decision
from bridge.article import ArticleReader
from bridge.channels.waha import WahaChannel
from bridge.compose import Composed, Composition, plan_compose
from bridge.config import Config, Secret, load_config
from bridge.console.accounts import AccountBook
from bridge.console.server import Console
from bridge.engagement import Engagement
from bridge.fetch import Fetcher
from bridge.item import Alert
from bridge.parser_pool import ParserPool
from bridge.store import Delivery, Store

PASSWORD = "una password lunga"
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')
NOW = datetime(2026, 12, 7, 10, 30, tzinfo=UTC)  # a Monday, 11:30 in Rome, outside quiet hours

CONFIG = """\
[bridge]
state_dir = "state"

[alerts]
quiet_hours = "22:00-07:00"

[[feeds]]
id = "notizie"
name = "Notizie dal Comune"
url = "feed.xml"
channels = ["whatsapp", "telegram"]
link_domains = ["comune.example.it"]

[channels.whatsapp]
type = "waha"
url = "http://127.0.0.1:9"
session = "default"
chat_id = "120363000000000000@newsletter"
api_key = "env:WAHA_API_KEY"

[channels.telegram]
type = "telegram"
chat_id = "@comune_example"
token = "env:TELEGRAM_BOT_TOKEN"
api_url = "http://127.0.0.1:9"

[console]
listen = "127.0.0.1:8470"
"""


@dataclass
class FakeClockDaemon:
    """What the console reads of the daemon (`bridge.console.server.Daemon`): its config, its
    open store, its wall time; the time and the monotonic clock are the test's. Its fetcher,
    parser processes and article reader are real, as the daemon's (pages from public addresses
    only, unless a test gives another fetcher)."""

    config: Config
    store: Store
    wall: datetime = NOW
    ticks: list[float] = field(default_factory=lambda: [0.0])
    fetcher: Fetcher = field(default_factory=lambda: Fetcher(user_agent="channel-bridge tests", timeout=10))
    parser: ParserPool = field(default_factory=ParserPool)
    articles: ArticleReader = field(init=False)
    acted: list[tuple[Action, str, str]] = field(default_factory=list)  # every `act` asked for, in order
    engagement: Engagement = field(init=False)
    composed: list[tuple[Composition, str, str]] = field(default_factory=list)  # every `compose` asked for

    def __post_init__(self) -> None:
        self.articles = ArticleReader(self.fetcher)
        self.engagement = Engagement(self.monotonic)

    def use_fetcher(self, fetcher: Fetcher) -> Fetcher:
        """Read feeds and pages through `fetcher` from now on; return the one it replaces."""
        previous, self.fetcher = self.fetcher, fetcher
        self.articles = ArticleReader(fetcher)
        return previous

    def now(self) -> datetime:
        return self.wall

    async def act(self, action: Action, *, who: str, where: str) -> Decision:
        """An editor's action, decided and made durable as `Bridge.act` does (`plan_action`
        through the store's turns), without the daemon's workers to wake."""
        self.acted.append((action, who, where))
        return await self.store.acommit(plan_action(self.store, self.config, action, who=who, where=where,
                                                    now=self.now()))

    async def compose(self, composition: Composition, *, who: str, where: str) -> Composed:
        """An alert an editor wrote, queued durably as `Bridge.compose` does (`plan_compose`)."""
        self.composed.append((composition, who, where))
        return await self.store.acommit(plan_compose(self.store, self.config, composition, who=who, where=where,
                                                     now=self.now()))

    def monotonic(self) -> float:
        return self.ticks[0]


def write_config(directory: Path, extra: str = "") -> Config:
    (directory / "feed.xml").write_text("<rss/>", encoding="utf-8")
    path = directory / "config.toml"
    path.write_text(CONFIG + textwrap.dedent(extra), encoding="utf-8")
    return load_config(path, env={}, resolve_secrets=False)


def delivery(ident: str, channel: str, title: str, summary: str = "", *, link: str = "https://www.comune.example.it/n/1",
             urgent: bool = False, order: float = 1.0, **changes: object) -> Delivery:
    alert = Alert(feed_id="notizie", feed_name="Notizie dal Comune", title=title, summary=summary, link=link,
                  published=NOW, urgent=urgent)
    return Delivery(id=ident, channel=channel, feed_id="notizie", alert=alert, created=NOW, order=order,
                    urgent=urgent, **changes)  # type: ignore[arg-type]


class ServedConsole:
    """A `Console` listening on 127.0.0.1 (a port the system chose), its loop in a thread."""

    def __init__(self, daemon: FakeClockDaemon) -> None:
        self.daemon = daemon
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.console = Console(daemon, monotonic=daemon.monotonic)
        self.call(self.console.start("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.console.port}"
        self.clients: list[httpx.Client] = []

    def call(self, work: object) -> object:
        return asyncio.run_coroutine_threadsafe(work, self.loop).result(timeout=30)  # type: ignore[arg-type]

    def client(self) -> httpx.Client:
        client = httpx.Client(base_url=self.url, follow_redirects=False, timeout=30)
        self.clients.append(client)
        return client

    def login(self, name: str = "m.rossi", password: str = PASSWORD) -> httpx.Client:
        client = self.client()
        answer = client.post("/login", data={"name": name, "password": password})
        assert answer.status_code == 303, answer.text
        return client

    @staticmethod
    def form_token(client: httpx.Client) -> str:
        """The form token of `client`'s session, as its pages hold it."""
        found = FORM_TOKEN.search(client.get("/coda").text)
        assert found is not None, "no form token on the page"
        return found.group(1)

    def post_form(self, client: httpx.Client, path: str, data: dict[str, str], **options: Any) -> httpx.Response:
        """Post `data` to `path` as the session's own form does: with its form token."""
        return client.post(path, data={"form_token": self.form_token(client), **data}, **options)

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.call(self.console.stop())
        self.call(self.daemon.fetcher.aclose())
        self.call(self.daemon.parser.aclose())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def read_counts(site: ServedConsole, waha_url: str, api_key: str | None = None) -> None:
    """One reading of views and reactions of the "whatsapp" channel, pointed at the WAHA at
    `waha_url`, as the daemon's background task makes it, on the console's own loop."""
    config = dataclasses.replace(site.daemon.config.channels["whatsapp"], url=waha_url,
                                 api_key=Secret("env:WAHA_API_KEY", api_key) if api_key else None)

    async def once() -> None:
        async with httpx.AsyncClient() as http:
            channel = WahaChannel(config, http=http, verify_window=0)
            if not await site.daemon.engagement.refresh("whatsapp", channel, site.daemon.now()):
                raise AssertionError("views and reactions could not be read")

    site.call(once())


def served(tmp_path: Path, deliveries: list[Delivery] = (), extra: str = "") -> Iterator[ServedConsole]:  # type: ignore[assignment]
    config = write_config(tmp_path, extra)
    store = Store.open(config.bridge.state_dir)
    if deliveries:
        store.add_deliveries(list(deliveries))
    book = AccountBook(config.bridge.state_dir)
    book.add("m.rossi", "viewer", PASSWORD)
    served = ServedConsole(FakeClockDaemon(config, store))
    try:
        yield served
    finally:
        served.close()
        store.close()
