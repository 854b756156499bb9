"""A manual alert an editor writes (the console's *Componi*, `channel-bridge send`), and the
test message that checks a channel end to end (`channel-bridge send --test`): one pure
decision, and the plan that queues what it makes.

A composed alert has a title, a text, a link on the comune's domains (those of its feeds and
their `link_domains`, judged by the link guard, `bridge.links.link_problem`), an optional
image (public https, as `bridge.images` fetches them), urgent or not, and the channels it goes
to (by default every channel a feed of the comune posts to). `decide` checks each and makes
one `Delivery` per channel, every id derived from one compose id, the feed id MANUAL_FEED
("manuale", which no feed of the config may take). An editor wrote it, so it never waits for
approval; a routine one keeps quiet hours and pacing, an urgent one does not. The test
message (TEST) is clearly not news, links to the comune's site and goes now (`send_now`).

Each refusal is a `approval.ActionRefused` with a code, one English line (the command line)
and one Italian line (`it`, the console). `plan_compose` writes the audit entries (who, from
where, the alert) and then the outbox, durably, before the caller hears of it: the daemon's
`Bridge.compose` commits it for the control socket and the console alike.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bridge import render, summary
from bridge.addresses import is_public_address
from bridge.approval import ActionRefused, normalize_text
from bridge.audit import AuditEntry, snapshot
from bridge.config import MANUAL_FEED
from bridge.images import url_problem
from bridge.item import Alert
from bridge.links import allowed_domains, link_problem
from bridge.models import Delivery
from bridge.template import channel_template

if TYPE_CHECKING:
    from bridge.config import Config
    from bridge.store import Plan, Store

COMPOSE = "compose"  # the audit trail's action for a composed alert
TEST = "test"  # ... and for a test message
MANUAL_NAME = "Avviso manuale"  # the feed name a composed alert carries
TEST_TITLE = "Messaggio di prova di channel-bridge"
TEST_TEXT = ("Messaggio di prova di channel-bridge: serve solo a controllare che il canale funzioni. "
             "Non è una notizia, non occorre fare nulla.")
MAX_TITLE = 300  # characters of a title read from a form or a command line
MAX_TEXT = 5000

# Why a composition is refused (`ActionRefused.code`; the control protocol's error names too).
BAD_TITLE = "bad_title"
BAD_TEXT = "bad_text"
BAD_LINK = "bad_link"
BAD_IMAGE = "bad_image"
BAD_CHANNEL = "bad_channel"
TOO_LONG = "too_long"
ALREADY_QUEUED = "already_queued"


@dataclass(frozen=True, slots=True)
class Composition:
    """What an editor asks to send: `compose_id` names it (the same id twice queues it once);
    `channels` empty means every channel the comune posts to; `test` makes it the test message
    (title, text and link are then the bridge's own)."""

    compose_id: str
    title: str = ""
    text: str = ""
    link: str = ""
    image_url: str | None = None
    urgent: bool = False
    channels: tuple[str, ...] = ()
    test: bool = False

    @property
    def action(self) -> str:
        return TEST if self.test else COMPOSE


@dataclass(frozen=True, slots=True)
class Composed:
    """The deliveries a composition made (one per channel, in the order asked) and one line
    saying so."""

    composition: Composition
    deliveries: tuple[Delivery, ...]
    message: str


def _refused(code: str, message: str, it: str, hint: str = "") -> ActionRefused:
    return ActionRefused(code, message, hint=hint, it=it)


def delivery_id(compose_id: str, channel: str) -> str:
    """The stable id of composition `compose_id` on `channel`."""
    return hashlib.sha256(f"{channel}\n{MANUAL_FEED}:{compose_id}".encode()).hexdigest()[:32]


def posting_channels(config: Config) -> tuple[str, ...]:
    """Every channel a feed of the comune posts to, in the order the config names them."""
    return tuple(dict.fromkeys(name for feed in config.feeds for name in feed.channels if name in config.channels))


def comune_site(config: Config) -> str:
    """The comune's site, for the test message's link: the root of its first web feed's host."""
    for feed in config.feeds:
        parts = urlsplit(feed.url)
        if parts.scheme in ("http", "https") and parts.netloc:
            return f"{parts.scheme}://{parts.netloc}/"
    return ""


def comune_domains(config: Config) -> frozenset[str]:
    """The domains a composed alert may link to: those of every feed (`links.allowed_domains`)."""
    return frozenset().union(*(allowed_domains(feed.url, feed.link_domains) for feed in config.feeds))


def link_refusal(link: str, config: Config) -> ActionRefused | None:
    """Why `link` may not be the link of a composed alert (None: it may): the link guard's
    judgement for each feed, accepted when one feed accepts it."""
    if not link.strip():
        return _refused(BAD_LINK, "the alert needs a link to its page on the comune's site",
                        "Manca il link: serve l'indirizzo della pagina sul sito del comune.")
    problems = [link_problem(link.strip(), feed_url=feed.url, link_domains=feed.link_domains) for feed in config.feeds]
    if any(problem is None for problem in problems):
        return None
    domains = ", ".join(sorted(comune_domains(config))) or "none"
    first = next((p for p in problems if p), "no feed is configured")
    return _refused(BAD_LINK, f"the link may not be posted: {first} (the comune's domains: {domains})",
                    f"Il link non si può pubblicare: deve essere l'indirizzo completo (https://...) di una pagina "
                    f"sui domini del comune ({domains}), senza spazi né porte particolari.",
                    hint="link a page of the comune's site, or add its domain to a feed's link_domains")


def image_refusal(url: str) -> ActionRefused | None:
    """Why `url` may not be a composed alert's image (None: it may): https with a host, as the
    bridge fetches images (`images.url_problem`), on no private address written literally
    (a host's addresses are checked again when it is fetched)."""
    problem = url_problem(url)
    host = urlsplit(url).hostname if problem is None else None
    if problem is None and host is not None and _is_ip(host) and not is_public_address(host):
        problem = f"{host} is not a public address"
    if problem is None:
        return None
    return _refused(BAD_IMAGE, f"the image cannot be used: {problem}",
                    "L'immagine non si può usare: serve un indirizzo https pubblico di un'immagine.")


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _channels(composition: Composition, config: Config) -> tuple[str, ...]:
    if composition.test:
        if len(composition.channels) != 1:
            raise _refused(BAD_CHANNEL, "a test message goes to one channel: name it with --channel",
                           "Il messaggio di prova va a un solo canale: sceglierlo.")
        wanted: tuple[str, ...] = composition.channels
    else:
        wanted = tuple(dict.fromkeys(composition.channels)) or posting_channels(config)
    unknown = [name for name in wanted if name not in config.channels]
    if unknown:
        names = ", ".join(config.channels) or "none"
        raise _refused(BAD_CHANNEL, f'no channel "{unknown[0]}" in the config (channels: {names})',
                       f"Il canale «{unknown[0]}» non esiste (canali: {names}).")
    if not composition.test and config.ops.channel in wanted and config.ops.channel not in posting_channels(config):
        raise _refused(BAD_CHANNEL, f'"{config.ops.channel}" is the ops channel, for the bridge\'s own alerts',
                       f"«{config.ops.channel}» è il canale dei tecnici, non dei cittadini.")
    if not wanted:
        raise _refused(BAD_CHANNEL, "no channel to send to: no feed posts to any channel",
                       "Nessun canale a cui inviare.")
    return wanted


def alert_of(composition: Composition, config: Config) -> Alert:
    """The alert `composition` asks for, checked: title, text, link, image. Raise
    ActionRefused (BAD_TITLE, BAD_TEXT, BAD_LINK, BAD_IMAGE)."""
    if composition.test:
        return Alert(feed_id=MANUAL_FEED, feed_name=MANUAL_NAME, title=TEST_TITLE, summary=TEST_TEXT,
                     link=comune_site(config))
    title = normalize_text(composition.title[:MAX_TITLE + 1])
    text = normalize_text(composition.text[:MAX_TEXT + 1])
    if not title:
        raise _refused(BAD_TITLE, "the alert needs a title", "Manca il titolo.", hint='give --title "..."')
    if not text:
        raise _refused(BAD_TEXT, "the alert needs a text", "Manca il testo.", hint='give --text "..."')
    refusal = link_refusal(composition.link, config)
    if refusal is not None:
        raise refusal
    image = (composition.image_url or "").strip() or None
    if image is not None and (refusal := image_refusal(image)) is not None:
        raise refusal
    off_site = summary.off_site_addresses(text, link_domains=sorted(comune_domains(config)))
    if off_site:
        raise _refused(BAD_TEXT, f"the text links off the comune's site: {off_site[0].url}",
                       f"Il testo contiene un indirizzo fuori dal sito del comune ({off_site[0].url}): toglierlo.",
                       hint="the only link of an alert is its page on the comune's site")
    return Alert(feed_id=MANUAL_FEED, feed_name=MANUAL_NAME, title=title, summary=text,
                 link=composition.link.strip(), urgent=composition.urgent, image_url=image)


def _fits(alert: Alert, channel_name: str, config: Config) -> None:
    """Refuse (TOO_LONG) an alert over `channel_name`'s limits, measured as the feeds' alerts are
    (`summary.excess`, with the platform the channel's `outgoing` fits to)."""
    channel = config.channels[channel_name]
    limit = channel.max_length or config.alerts.max_length
    over = summary.excess(alert, max_length=limit, template=channel_template(channel.template, channel.timezone),
                          platform=render.platform_for(channel.type, channel.max_length))
    if over > 0:
        raise _refused(TOO_LONG, f"the alert is {over} characters too long for {channel_name} "
                       f"(at most {limit} with its title and link)",
                       f"L'avviso è troppo lungo per {channel_name} di {over} caratteri (al massimo {limit} con "
                       "titolo e link): accorciarlo.", hint="shorten the text")


def decide(composition: Composition, config: Config, *, now: datetime, who: str) -> Composed:
    """The deliveries `composition` by `who` at `now` makes, one per channel: pending (an
    editor wrote it: no approval), `urgent` as asked (past quiet hours and pacing), the test
    message sent now. Raise ActionRefused when it cannot be sent as asked: nothing is made."""
    channels = _channels(composition, config)
    alert = alert_of(composition, config)
    if composition.test and not alert.link:
        raise _refused(BAD_LINK, "no feed has a web address: the test message has no site to link",
                       "Nessun feed ha un indirizzo web: il messaggio di prova non ha un sito a cui puntare.")
    for name in channels:
        _fits(alert, name, config)
    deliveries = tuple(
        Delivery(id=delivery_id(composition.compose_id, name), channel=name, feed_id=MANUAL_FEED, alert=alert,
                 created=now, order=now.timestamp(), urgent=alert.urgent, send_now=composition.test,
                 acted=composition.action, acted_by=who, acted_at=now)
        for name in channels)
    what = "test message" if composition.test else ("urgent alert" if alert.urgent else "alert")
    return Composed(composition, deliveries, f"{what} queued for {', '.join(channels)}")


def plan_compose(store: Store, config: Config, composition: Composition, *, who: str, where: str,
                 now: datetime) -> Plan[Composed]:
    """Decide `composition` at its turn and record it (audit entries, then the outbox, both
    durable); return what it made. Raise ActionRefused, changing nothing, when it is refused or
    its compose id was queued already."""
    composed = decide(composition, config, now=now, who=who)
    if any(store.has_delivery(d.id) for d in composed.deliveries):
        raise _refused(ALREADY_QUEUED, f"this alert ({composition.compose_id}) was already queued",
                       "Questo avviso è già stato messo in coda.", hint="see channel-bridge queue")
    entries = [AuditEntry(at=now, who=who, where=where, action=composition.action, alert_id=d.id, channel=d.channel,
                          feed_id=d.feed_id, title=d.alert.title, before={}, after=snapshot(d))
               for d in composed.deliveries]
    yield from store.plan_act(entries, list(composed.deliveries), [])
    return composed
