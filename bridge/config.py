"""Load `config.toml` into frozen, typed objects; report every error at once, with its place.

Given a path, `load_config` returns a `Config` or raises `ConfigError` whose `errors` each
name the place and the problem, e.g.
`feeds[1] (id="eventi").interval: expected a duration like "5m", got "5 minuti"`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge import __version__
from bridge.alerts import zones as zone_table
from bridge.logs import register_secrets
from bridge.template import TemplateError, parse_template

DEFAULT_USER_AGENT = f"channel-bridge/{__version__}"
DEFAULT_MAX_FEED_BYTES = 10 * 1024 * 1024

CHANNEL_TYPES = ("waha", "whapi", "telegram", "mastodon", "webhook", "console", "facebook", "bluesky")
FetchArticle = Literal["auto", "always", "never"]
#: How a posted item that changed at its source is followed (`bridge.corrections.correction_mode`).
CORRECTION_MODES = ("edit", "post", "ask", "off")
# A channel's `card`: when the alert goes with its image card (`bridge.cards`). "auto": when the
# alert has no image of its own, on the platforms that want a picture; "always"; "never".
CardMode = Literal["auto", "always", "never"]
CARD_MODES = ("auto", "always", "never")
# The card's band when no `[cards] colours` entry matches: the blue of the Designers Italia kit.
DEFAULT_CARD_COLOUR = "#0066cc"
# The Graph API version a facebook channel speaks when `api_version` is not set: one Meta keeps
# for two years after its release (v25.0: February 2026 to July 2028).
DEFAULT_GRAPH_API_VERSION = "v25.0"
_GRAPH_VERSION_RE = re.compile(r"^v[0-9]{1,3}\.[0-9]{1,2}$")


class ConfigError(Exception):
    """The configuration is not usable. `errors` lists every problem, each with its place."""

    def __init__(self, errors: list[str], path: Path | None = None) -> None:
        self.errors = errors
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(where + "; ".join(errors))


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret resolved from `env:NAME`, `file:PATH` or `credential:NAME`.

    Its repr and str show only the reference, so it cannot leak into logs or `status`.
    """

    ref: str
    value: str = field(repr=False)

    def __str__(self) -> str:
        return self.ref


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A daily window such as 22:00-07:00; it may cross midnight."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        """True when `moment` (local wall time) falls inside the window."""
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class BridgeSettings:
    state_dir: Path
    timezone: ZoneInfo
    user_agent: str = DEFAULT_USER_AGENT
    fetch_timeout: timedelta = timedelta(seconds=30)
    max_feed_bytes: int = DEFAULT_MAX_FEED_BYTES
    # Where the daemon serves its control socket (`bridge.control`); see `_control_socket`.
    control_socket: Path | None = None

    @property
    def socket_path(self) -> Path:
        """The control socket's path: `control_socket`, else `control.sock` in the state directory."""
        return self.control_socket or self.state_dir / CONTROL_SOCKET_NAME


@dataclass(frozen=True, slots=True)
class TimeoutRule:
    """What an alert waiting for approval does once it has waited `after`: "send" or "drop";
    `after` None: it waits for an editor however long."""

    after: timedelta | None = None
    action: str = "drop"

    def __str__(self) -> str:
        return "never" if self.after is None else f"{self.action} after {format_duration(self.after)}"


@dataclass(frozen=True, slots=True)
class ApproveTimeout:
    """`approve_timeout`: the rule for routine alerts and the one for urgent alerts. The default
    never sends an unapproved routine alert (it waits for an editor); an unapproved urgent
    alert goes out after 30 minutes, since a missed emergency is the worst failure."""

    routine: TimeoutRule = field(default_factory=TimeoutRule)
    urgent: TimeoutRule = field(default_factory=lambda: TimeoutRule(timedelta(minutes=30), "send"))

    def rule(self, *, urgent: bool) -> TimeoutRule:
        return self.urgent if urgent else self.routine


@dataclass(frozen=True, slots=True)
class FeedConfig:
    id: str
    name: str
    url: str  # http(s) URL, or an absolute local path
    interval: timedelta
    channels: tuple[str, ...]
    max_age: timedelta
    backfill: int
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    urgent: bool = False
    link_domains: tuple[str, ...] = ()
    fetch_article: FetchArticle = "auto"
    approve: bool = False  # its alerts wait for an editor's approval (see `bridge.approval`)
    approve_timeout: ApproveTimeout | None = None  # None: the channel's, else the default
    corrections: str | None = None  # one of CORRECTION_MODES; None: the channel's, else the default
    # An official alert source (`bridge.alerts`) instead of a news feed: "dpc", "meteoalarm" or
    # "cap"; "rss" (RSS or Atom) otherwise. The area it follows: DPC zone codes, Meteoalarm
    # regions (EMMA_ID), resolved from `istat` and the codes given; `link`, the page its posts
    # send citizens to (None: the source's own page); `urgent_levels`, the levels that go out on
    # the urgent path.
    type: str = "rss"
    zones: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    istat: str | None = None
    link: str | None = None
    urgent_levels: tuple[str, ...] = ("arancione", "rossa")

    @property
    def is_local(self) -> bool:
        return not self.url.startswith(("http://", "https://"))

    @property
    def is_alert_source(self) -> bool:
        """An official alert source: polled ahead of news feeds, read by `bridge.alerts`."""
        return self.type != "rss"

    @property
    def polls_urgently(self) -> bool:
        """Its polls take the poll slots ahead of routine ones (`bridge.slots`)."""
        return self.urgent or self.is_alert_source


@dataclass(frozen=True, slots=True)
class AlertSettings:
    max_length: int = 400
    quiet_hours: TimeWindow | None = None
    min_gap: timedelta = timedelta(0)
    urgent_keywords: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChannelConfig:
    """One `[channels.NAME]` table. Which keys apply depends on `type`."""

    name: str
    type: str
    url: str | None = None
    api_url: str | None = None
    session: str = "default"
    chat_id: str | None = None
    api_key: Secret | None = None
    token: Secret | None = None
    secret: Secret | None = None
    visibility: str = "public"
    language: str = "it"
    images: bool = False
    max_per_day: int | None = None
    max_length: int | None = None
    utm: Mapping[str, str] = field(default_factory=dict)
    template: str | None = None
    timeout: timedelta = timedelta(seconds=30)
    approve: bool = False  # every feed's alerts on this channel wait for an editor's approval
    approve_timeout: ApproveTimeout | None = None
    corrections: str | None = None  # one of CORRECTION_MODES; None: the default
    card: CardMode = "auto"  # read by the platforms that post pictures; the others ignore it
    page_id: str | None = None  # facebook: the Page's numeric id
    api_version: str = DEFAULT_GRAPH_API_VERSION  # facebook: the Graph API version in every path
    # Bluesky: the account's handle (or e-mail), its app password and its PDS (`service`).
    handle: str | None = None
    app_password: Secret | None = None
    service: str | None = None
    # The bridge's `timezone` (not a key of the table): dates a channel shows ({date}, the
    # console's header) are told in it.
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/Rome"))
    # The bridge's `state_dir` (not a key of the table either), for the channels that keep a
    # file of their own there (Bluesky's session).
    state_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class OpsSettings:
    channel: str | None = None
    min_interval: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class ConsoleSettings:
    """The staff console (`[console]`): off while `listen` is None."""

    listen: tuple[str, int] | None = None  # (address, port) the daemon serves the console on
    session_timeout: timedelta = timedelta(hours=8)  # a login lasts this long without use
    # The bearer token `/metrics` asks for; without one, only this machine may read it.
    metrics_token: Secret | None = None


@dataclass(frozen=True, slots=True)
class CardSettings:
    """`[cards]`: the look of an alert's image card (`bridge.cards`).

    `crest` is the comune's crest, an image file (absolute; the key names it relative to the
    config file), None for a card without one; `crest_text` is the key as written, for messages.
    `name` is the comune's name on the card, None for the alert's own feed name. `colours` maps a
    category word or a feed id (casefolded, in file order) to the band's "#rrggbb"; `default`
    colours the rest."""

    crest: Path | None = None
    crest_text: str | None = None
    name: str | None = None
    colours: Mapping[str, str] = field(default_factory=dict)
    default_colour: str = DEFAULT_CARD_COLOUR


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    bridge: BridgeSettings
    feeds: tuple[FeedConfig, ...]
    alerts: AlertSettings
    channels: Mapping[str, ChannelConfig]
    ops: OpsSettings
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    cards: CardSettings = field(default_factory=CardSettings)

    def feed(self, feed_id: str) -> FeedConfig:
        for feed in self.feeds:
            if feed.id == feed_id:
                return feed
        raise KeyError(feed_id)


# ---------------------------------------------------------------------------
# Loading


_DURATION_RE = re.compile(r"^(?:\d+[smhd])+$")
_DURATION_PART_RE = re.compile(r"(\d+)([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_FEED_ID_RE = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# The feed id under which ops alerts are queued and kept in the history (bridge/ops.py): no
# feed of the config may take it.
OPS_FEED = "ops"
# The feed id of the alerts an editor writes (bridge/compose.py): no feed may take it either.
MANUAL_FEED = "manuale"
_CHANNEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_WINDOW_RE = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")
_SECRET_PREFIXES = ("env:", "file:", "credential:")

MIN_INTERVAL = timedelta(seconds=1)
RECOMMENDED_MIN_INTERVAL = timedelta(seconds=30)
# First polls that may queue this many posts in all get a warning: a queue of thousands takes
# days to send at a sane pace, and each item is old news by then.
BACKFILL_WARNING = 1000


def parse_duration(text: str) -> timedelta:
    """Return the timedelta of "30s", "5m", "2h", "7d" or a sum like "1h30m".

    Raise ValueError with a message suitable for an operator otherwise.
    """
    compact = text.strip().replace(" ", "")
    if not _DURATION_RE.match(compact):
        raise ValueError(f'expected a duration like "5m", got "{text}"')
    seconds = sum(int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART_RE.findall(compact))
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        raise ValueError(f'"{text}" is too long a duration') from None


def format_duration(delta: timedelta) -> str:
    """Render a timedelta the way config.toml writes it ("5m", "1h30m", "0s")."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_time_window(text: str) -> TimeWindow:
    """Return the window of "22:00-07:00"; raise ValueError for anything else."""
    match = _WINDOW_RE.match(text.strip())
    if not match:
        raise ValueError(f'expected a time window like "22:00-07:00", got "{text}"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f'"{text}" is not a valid time of day range (hours 00-23, minutes 00-59)')
    if (h1, m1) == (h2, m2):
        raise ValueError(f'"{text}" starts and ends at the same time; remove the key instead')
    return TimeWindow(time(h1, m1), time(h2, m2))


def resolve_secret(ref: str, env: Mapping[str, str], base_dir: Path, *, read: bool = True) -> Secret:
    """Resolve `env:NAME`, `file:PATH` (relative to the config file) or `credential:NAME`.

    A file's content is taken without the whitespace around it (its final line break). The
    value is registered for masking in the logs (`bridge.logs.register_secrets`) as soon as
    it is read, before anything can print it. Raise ValueError saying what is missing or
    wrong; the message names the secret's source, never the secret itself: a value that is
    not one line of printable ASCII (a line break, a control character, a character that an
    HTTP header cannot carry, a space at either end) is refused, since it could not be sent
    and would leak, escaped, into error messages.
    """
    if not ref.startswith(_SECRET_PREFIXES):
        raise ValueError(
            "secrets are never written literally in config.toml: "
            'use "env:NAME", "file:PATH" or "credential:NAME"'
        )
    kind, _, name = ref.partition(":")
    if not name:
        raise ValueError(f'"{kind}:" needs a name after the colon')
    if not read:
        return Secret(ref, "")
    if kind == "env":
        value = env.get(name)
        if not value:
            raise ValueError(f"environment variable {name} is not set (or is empty)")
        source = f"environment variable {name}"
    else:
        if kind == "credential":
            directory = env.get("CREDENTIALS_DIRECTORY")
            if not directory:
                raise ValueError(
                    f"credential:{name} needs systemd's LoadCredential= "
                    "($CREDENTIALS_DIRECTORY is not set; outside systemd use env: or file:)"
                )
            path = Path(directory) / name
        else:
            path = Path(name) if Path(name).is_absolute() else base_dir / name
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            value = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ValueError(f"{path} is not UTF-8 text; it should hold the secret alone, on one line") from None
        if not value:
            raise ValueError(f"{path} is empty")
        source = f"file {path}"
    # Masked even when refused below: nothing may print it, not even by mistake.
    register_secrets([value])
    problem = secret_problem(value)
    if problem:
        fix = "set it to the secret alone" if kind == "env" else (
            "the file must hold the secret alone, on one line (a final line break is fine)")
        raise ValueError(f"the secret in {source} {problem}: {fix}")
    return Secret(ref, value)


def secret_problem(value: str) -> str | None:
    """Why `value` cannot be a secret, or None. A secret goes into HTTP headers and URLs: one
    line of printable ASCII, spaces allowed inside but not at either end. The reason names
    the position of the first bad character (1-based), never the character."""
    if "\n" in value or "\r" in value:
        return "has more than one line"
    if value != value.strip(" "):
        return "begins or ends with a space"
    for position, char in enumerate(value, start=1):
        if char < " " or char == "\x7f":
            return f"contains a control character (at position {position})"
        if char > "\x7f":
            return f"contains a character that an HTTP header cannot carry (non-ASCII, at position {position})"
    return None


class _Table:
    """Reads one TOML table, remembering errors with their place instead of raising.

    Errors are held until `finish()` (or `flush()`) and then written to `errors` in the order
    of their keys in the file, so an operator can fix them top to bottom.
    """

    def __init__(self, data: Any, place: str, errors: list[str], known: set[str] | None = None) -> None:
        self.place = place
        self.errors = errors
        self.known = _KNOWN.get(place, set()) if known is None else known
        self.pending: list[tuple[int, str]] = []
        self.flushed = False
        self.data: dict[str, Any] = data if isinstance(data, dict) else {}
        self.used: set[str] = set()
        if not isinstance(data, dict):
            self.error("", f"expected a table, got {_kind(data)}")

    def at(self, key: str) -> str:
        return f"{self.place}.{key}" if self.place else key

    def error(self, key: str, message: str) -> None:
        text = f"{self.at(key) if key else self.place}: {message}"
        if self.flushed:
            self.errors.append(text)
            return
        # The table itself first, then its keys as written; missing keys come last.
        keys = list(self.data)
        position = -1 if not key else keys.index(key) if key in keys else len(keys)
        self.pending.append((position, text))

    def flush(self) -> None:
        """Write the held errors in file order; later errors are written at once."""
        self.errors.extend(text for _, text in sorted(self.pending, key=lambda p: p[0]))
        self.pending.clear()
        self.flushed = True

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    def get(self, key: str, expected: type | tuple[type, ...], default: Any = None) -> Any:
        if key not in self.data:
            return default
        value = self.raw(key)
        # TOML booleans are ints to Python; never accept one where a number is meant.
        is_bool = isinstance(value, bool)
        wants_bool = expected is bool or (isinstance(expected, tuple) and bool in expected)
        if not isinstance(value, expected) or (is_bool and not wants_bool):
            self.error(key, f"expected {_name(expected)}, got {_kind(value)} {_show(value)}")
            return default
        return value

    def string(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        if required and key not in self.data:
            self.error(key, "is required")
            return default
        value = self.get(key, str, default)
        if isinstance(value, str) and required and not value.strip():
            self.error(key, "must not be empty")
        return value

    def converted(self, key: str, convert: Callable[[str], Any], default: Any) -> Any:
        value = self.get(key, str)
        if value is None:
            return default
        try:
            return convert(value)
        except ValueError as exc:
            self.error(key, str(exc))
            return default

    def integer(self, key: str, default: int | None, *, minimum: int = 0) -> Any:
        value = self.get(key, int, default)
        if isinstance(value, int) and value < minimum:
            self.error(key, f"must be at least {minimum}, got {value}")
            return default
        return value

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(key, list)
        if value is None:
            return default
        bad = [v for v in value if not isinstance(v, str) or not v.strip()]
        if bad:
            self.error(key, f"expected a list of non-empty strings, got {_show(value)}")
            return default
        return tuple(v.strip() for v in value)

    def finish(self) -> None:
        """Report every key that nothing read: typos must not be silently ignored."""
        for key in self.data:
            if key not in self.used:
                self.error(key, "unknown key" + _suggest(key, self.used | self.known))
        self.flush()


def _name(expected: type | tuple[type, ...]) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", list: "a list", dict: "a table"}
    if isinstance(expected, tuple):
        return " or ".join(names.get(t, t.__name__) for t in expected)
    return names.get(expected, expected.__name__)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    return {str: "a string", int: "an integer", float: "a number", list: "a list", dict: "a table"}.get(
        type(value), type(value).__name__
    )


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{...}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _suggest(key: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


_FEED_KEYS = {
    "interval", "channels", "max_age", "backfill", "include", "exclude", "urgent",
    "link_domains", "fetch_article", "approve", "approve_timeout", "corrections",
}
_CHANNEL_COMMON = {"type", "images", "max_per_day", "max_length", "utm", "template", "timeout", "approve",
                   "approve_timeout", "card", "corrections"}
_CHANNEL_KEYS = {
    "waha": {"url", "session", "chat_id", "api_key"},
    "whapi": {"url", "chat_id", "token"},
    "telegram": {"api_url", "chat_id", "token"},
    "mastodon": {"url", "token", "visibility", "language"},
    "webhook": {"url", "secret"},
    "console": set(),
    "facebook": {"page_id", "token", "api_url", "api_version"},
    "bluesky": {"handle", "app_password", "service", "language"},
}
_FEED_ONLY_KEYS = {"id", "url", "name", "type", "zones", "regions", "istat", "link", "urgent_levels"}
FEED_TYPES = ("rss", "dpc", "meteoalarm", "cap")
_ALERT_SOURCE_KEYS = ("zones", "regions", "istat", "link", "urgent_levels")
ALERT_LEVELS = ("gialla", "arancione", "rossa")
# The Department's own page of the criticality bulletin: where a "dpc" source's posts send
# citizens unless `link` names the comune's civil-protection page (its CAP has no <web>).
DPC_BULLETIN_PAGE = "https://mappe.protezionecivile.gov.it/it/mappe-rischi/bollettino-di-criticita/"
_KNOWN: dict[str, set[str]] = {
    "": {"bridge", "defaults", "feeds", "alerts", "channels", "ops", "console", "cards"},
    "bridge": {"state_dir", "timezone", "user_agent", "fetch_timeout", "max_feed_bytes", "control_socket"},
    "defaults": _FEED_KEYS,
    "alerts": {"max_length", "quiet_hours", "min_gap", "urgent_keywords"},
    "ops": {"channel", "min_interval"},
    "console": {"listen", "session_timeout", "metrics_token"},
    "cards": {"crest", "name", "colours"},
}


def load_config(path: Path, env: Mapping[str, str] | None = None, *, resolve_secrets: bool = True) -> Config:
    """Read and validate the TOML file at `path`.

    Return a frozen `Config`. Raise `ConfigError` listing every problem found (a TOML syntax
    error is reported alone, with its line). `env` defaults to `os.environ`; it supplies
    `env:` secrets, `$CREDENTIALS_DIRECTORY` and `$STATE_DIRECTORY`. With `resolve_secrets`
    false (for commands that send nothing: status, history) secret references are checked for
    form only and their values left empty.
    """
    env = os.environ if env is None else env
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(["file not found (give the right path with --config)"], path) from None
    except OSError as exc:
        raise ConfigError([f"cannot read the file: {exc.strerror or exc}"], path) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError([f"not UTF-8 text (byte {exc.start})"], path) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"TOML syntax error: {exc}"], path) from None
    return parse_config(data, path=path.resolve(), env=env, resolve_secrets=resolve_secrets)


def parse_config(
    data: dict[str, Any], *, path: Path, env: Mapping[str, str], resolve_secrets: bool = True
) -> Config:
    """Validate already-parsed TOML `data` as if read from `path`; see `load_config`."""
    # Sections are read in dependency order (channels before the feeds that name them), but
    # their errors are reported in the order the sections appear in the file.
    section_errors: dict[str, list[str]] = {name: [] for name in _KNOWN[""]}
    top_errors: list[str] = []
    base_dir = path.parent
    top = _Table(data, "", top_errors)

    bridge = _parse_bridge(_Table(top.raw("bridge") or {}, "bridge", section_errors["bridge"]), base_dir, env)
    channels = {name: replace(channel, timezone=bridge.timezone) for name, channel in _parse_channels(
        top.raw("channels") or {}, section_errors["channels"], base_dir, env, resolve_secrets).items()}
    defaults = _Table(top.raw("defaults") or {}, "defaults", section_errors["defaults"])
    default_values = _feed_settings(defaults, channels, base={})
    defaults.finish()
    feeds = _parse_feeds(top.raw("feeds"), default_values, channels, section_errors["feeds"], base_dir)
    alerts = _parse_alerts(_Table(top.raw("alerts") or {}, "alerts", section_errors["alerts"]))
    ops = _parse_ops(_Table(top.raw("ops") or {}, "ops", section_errors["ops"]), channels)
    console = _parse_console(_Table(top.raw("console") or {}, "console", section_errors["console"]), base_dir, env,
                             resolve_secrets)
    cards = _parse_cards(_Table(top.raw("cards") or {}, "cards", section_errors["cards"]), base_dir)
    top.finish()
    errors: list[str] = []
    unknown = iter(top_errors)  # one per unknown top-level key, in file order
    for key in data:
        errors.extend(section_errors.pop(key) if key in section_errors else [next(unknown)])
    for missing in section_errors.values():  # e.g. "feeds: no [[feeds]] defined"
        errors.extend(missing)
    if errors:
        raise ConfigError(errors, path)
    channels = {name: replace(channel, state_dir=bridge.state_dir) for name, channel in channels.items()}
    return Config(path=path, bridge=bridge, feeds=tuple(feeds), alerts=alerts, channels=channels, ops=ops,
                  console=console, cards=cards)


def _parse_bridge(table: _Table, base_dir: Path, env: Mapping[str, str]) -> BridgeSettings:
    state_dir_text = table.string("state_dir", "state")
    state_dir = _state_dir(state_dir_text if isinstance(state_dir_text, str) else None, base_dir, env)
    tz_name = table.string("timezone", "Europe/Rome")
    timezone = ZoneInfo("Europe/Rome")
    if isinstance(tz_name, str):
        try:
            timezone = ZoneInfo(tz_name)
        except (ZoneInfoNotFoundError, ValueError):
            table.error("timezone", f'unknown time zone "{tz_name}" (expected a name like "Europe/Rome")')
    settings = BridgeSettings(
        state_dir=state_dir,
        timezone=timezone,
        user_agent=table.string("user_agent", DEFAULT_USER_AGENT) or DEFAULT_USER_AGENT,
        fetch_timeout=table.converted("fetch_timeout", parse_duration, timedelta(seconds=30)),
        max_feed_bytes=table.integer("max_feed_bytes", DEFAULT_MAX_FEED_BYTES, minimum=1024),
        control_socket=_control_socket(_text_or_none(table.string("control_socket", None)), base_dir, env),
    )
    if settings.fetch_timeout <= timedelta(0):
        table.error("fetch_timeout", "must be longer than 0s")
    table.finish()
    return settings


def _state_dir(text: str | None, base_dir: Path, env: Mapping[str, str]) -> Path:
    """Where the state lives: $STATE_DIRECTORY (systemd's StateDirectory=) wins, else
    `state_dir`, relative to the config file's directory."""
    systemd_state = env.get("STATE_DIRECTORY", "").split(":")[0]
    if systemd_state:
        return Path(systemd_state)
    state_dir = Path(text or "state")
    return state_dir if state_dir.is_absolute() else base_dir / state_dir


CONTROL_SOCKET_NAME = "control.sock"


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _control_socket(text: str | None, base_dir: Path, env: Mapping[str, str]) -> Path | None:
    """Where the daemon serves its control socket, and where every command looks for it (one
    answer for both, as for the state directory): in $RUNTIME_DIRECTORY (systemd's
    RuntimeDirectory=, which the root wrapper systemd/channel-bridge names too) when set, else
    `control_socket` (relative to the config file's directory), else None: `control.sock` in
    the state directory (`BridgeSettings.socket_path`)."""
    runtime = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime:
        return Path(runtime) / CONTROL_SOCKET_NAME
    if not text:
        return None
    path = Path(text)
    return path if path.is_absolute() else base_dir / path


@dataclass(frozen=True, slots=True)
class SalvagedConfig:
    """What `status` can still use of a config file that is not valid (see `salvage_config`)."""

    path: Path
    state_dir: Path
    timezone: ZoneInfo
    feed_ids: tuple[str, ...]
    channels: dict[str, str | None]  # name -> type, None when the file does not say


def salvage_config(path: Path, env: Mapping[str, str] | None = None) -> SalvagedConfig:
    """Read from the file at `path` only where its state is and what it names, whatever else is
    wrong with it, so that `status` can show the state while the config is invalid (after a
    rejected reload, say). Never raises: what cannot be read falls back to the defaults
    (state beside the file, or $STATE_DIRECTORY; Europe/Rome; no feed, no channel)."""
    env = os.environ if env is None else env
    path = Path(path).resolve()
    try:
        data: Any = tomllib.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        data = {}
    bridge = data.get("bridge") if isinstance(data.get("bridge"), dict) else {}
    text = bridge.get("state_dir")
    try:
        timezone = ZoneInfo(bridge.get("timezone", "Europe/Rome"))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        timezone = ZoneInfo("Europe/Rome")
    feeds = data.get("feeds") if isinstance(data.get("feeds"), list) else []
    ids = tuple(dict.fromkeys(f["id"] for f in feeds if isinstance(f, dict) and isinstance(f.get("id"), str)))
    tables = data.get("channels") if isinstance(data.get("channels"), dict) else {}
    channels = {name: (table.get("type") if isinstance(table, dict) and isinstance(table.get("type"), str) else None)
                for name, table in tables.items()}
    return SalvagedConfig(path, _state_dir(text if isinstance(text, str) else None, path.parent, env), timezone,
                          ids, channels)


def _feed_settings(table: _Table, channels: Mapping[str, ChannelConfig], base: dict[str, Any]) -> dict[str, Any]:
    """Read the keys a feed may set (and [defaults] may set for all), over `base`."""
    values = dict(base)
    if table.has("interval"):
        interval = table.converted("interval", parse_duration, None)
        if interval is not None and interval < MIN_INTERVAL:
            table.error("interval", "must be at least 1s")
        elif interval is not None:
            values["interval"] = interval
    if table.has("max_age"):
        max_age = table.converted("max_age", parse_duration, None)
        if max_age is not None and max_age <= timedelta(0):
            table.error("max_age", "must be longer than 0s")
        elif max_age is not None:
            values["max_age"] = max_age
    if table.has("channels"):
        names = table.strings("channels", ())
        if table.data["channels"] == []:
            table.error("channels", "must name at least one channel")
        for name in names:
            if name not in channels:
                known = ", ".join(sorted(channels)) or "none is defined"
                table.error("channels", f'unknown channel "{name}" (channels: {known})')
        # Set even when invalid: the error above says what is wrong, and the feeds inheriting
        # it must not add "no channel to post to".
        values["channels"] = names
    if table.has("backfill"):
        values["backfill"] = table.integer("backfill", 0)
    for key in ("include", "exclude", "link_domains"):
        if table.has(key):
            values[key] = table.strings(key)
    if table.has("urgent"):
        values["urgent"] = table.get("urgent", bool, False)
    _approval_settings(table, values)
    if table.has("fetch_article"):
        mode = table.get("fetch_article", str)
        if mode is not None and mode not in ("auto", "always", "never"):
            table.error("fetch_article", f'expected "auto", "always" or "never", got "{mode}"')
        elif mode is not None:
            values["fetch_article"] = mode
    return values


def _parse_feeds(
    raw: Any,
    defaults: dict[str, Any],
    channels: Mapping[str, ChannelConfig],
    errors: list[str],
    base_dir: Path,
) -> list[FeedConfig]:
    if raw is None:
        errors.append("feeds: no [[feeds]] defined: add at least one feed")
        return []
    if not isinstance(raw, list):
        errors.append(f"feeds: expected [[feeds]] tables, got {_kind(raw)}")
        return []
    feeds: list[FeedConfig] = []
    seen_ids: dict[str, int] = {}
    for index, entry in enumerate(raw):
        feed_id = entry.get("id") if isinstance(entry, dict) else None
        place = f'feeds[{index}] (id="{feed_id}")' if isinstance(feed_id, str) else f"feeds[{index}]"
        table = _Table(entry, place, errors, known=_FEED_KEYS | _FEED_ONLY_KEYS)
        before = len(errors)
        fid = table.string("id", required=True)
        if isinstance(fid, str) and fid and not _FEED_ID_RE.match(fid):
            table.error("id", f'"{fid}" may contain only a-z, 0-9 and "-" (it names the feed\'s state)')
        elif fid == OPS_FEED:
            table.error("id", f'"{OPS_FEED}" is the name of the bridge\'s own ops alerts; give the feed another id')
        elif fid == MANUAL_FEED:
            table.error("id", f'"{MANUAL_FEED}" is the name of the alerts editors write; give the feed another id')
        elif isinstance(fid, str) and fid in seen_ids:
            table.error("id", f'duplicate feed id "{fid}" (also feeds[{seen_ids[fid]}])')
        elif isinstance(fid, str):
            seen_ids[fid] = index
        url = table.string("url", required=True)
        if isinstance(url, str) and url.strip():
            url = _feed_location(url.strip(), base_dir, table)
        name = table.string("name", None)
        values = _feed_settings(table, channels, defaults)
        source = _alert_source(table)
        table.finish()
        if "channels" not in values:
            table.error("channels", "no channel to post to: set channels = [...] here or in [defaults]")
        if isinstance(url, str) and url.strip() and _is_file_path(url) and not values.get("link_domains"):
            # The link guard takes a feed's domain from its URL; a file has none, so every
            # item would be held.
            table.error("link_domains", "a local feed file has no web domain, so every item would be held: "
                        'list the domains its links may point to, e.g. link_domains = ["comune.esempio.it"]')
        if len(errors) > before:
            continue
        feeds.append(
            FeedConfig(
                id=fid,
                name=name or fid,
                url=url,
                interval=values.get("interval", timedelta(minutes=5)),
                channels=values["channels"],
                max_age=values.get("max_age", timedelta(days=7)),
                backfill=values.get("backfill", 0),
                include=values.get("include", ()),
                exclude=values.get("exclude", ()),
                urgent=values.get("urgent", False),
                link_domains=values.get("link_domains", ()),
                fetch_article=values.get("fetch_article", "auto"),
                approve=values.get("approve", False),
                approve_timeout=values.get("approve_timeout"),
                corrections=values.get("corrections"),
                **source,
            )
        )
    return feeds


def _alert_source(table: _Table) -> dict[str, Any]:
    """The keys of an official alert source (`type` other than "rss"), checked: the area it
    follows must resolve in the shipped zone table (`bridge.alerts.zones`) and name what the
    source publishes by (zones for dpc and cap, regions for meteoalarm)."""
    kind = table.string("type", "rss")
    if kind not in FEED_TYPES:
        table.error("type", f'expected one of {", ".join(repr(t) for t in FEED_TYPES)} (the default, "rss", is an '
                    f'RSS or Atom news feed), got "{kind}"')
        return {}
    if kind == "rss":
        for key in _ALERT_SOURCE_KEYS:
            if table.has(key):
                table.error(key, 'only for an official alert source: type = "dpc", "meteoalarm" or "cap"')
        return {}
    istat = table.string("istat", None)
    named_zones = table.strings("zones")
    named_regions = table.strings("regions")
    link = table.string("link", None)
    if isinstance(link, str) and not link.startswith("https://"):
        table.error("link", f'expected the https:// address of the comune\'s page for these alerts, got "{link}"')
    levels = table.strings("urgent_levels", ("arancione", "rossa"))
    for level in levels:
        if level not in ALERT_LEVELS:
            table.error("urgent_levels", f'unknown level "{level}": expected some of {", ".join(ALERT_LEVELS)}')
    try:
        area = zone_table.area_for(istat=istat if isinstance(istat, str) else None, zones=named_zones,
                                   regions=named_regions)
    except zone_table.ZoneError as exc:
        table.error("istat" if str(exc).startswith("istat") else "zones", str(exc))
        return {}
    if kind in ("dpc", "cap") and not area.zones:
        table.error("zones", f'a "{kind}" source needs the alert zones it follows: istat = "033032" (the comune\'s '
                    'ISTAT code) or zones = ["Emil-H1"]; channel-bridge zones NAME tells them')
    if kind == "meteoalarm" and not area.regions:
        table.error("regions", 'a "meteoalarm" source needs the regions it follows: regions = ["IT005"] '
                    "(Meteoalarm's EMMA_ID; channel-bridge zones NAME tells it where the table knows it)")
    if not isinstance(link, str):
        link = DPC_BULLETIN_PAGE if kind == "dpc" else None
    return {"type": kind, "zones": area.zones, "regions": area.regions,
            "istat": istat if isinstance(istat, str) else None, "link": link,
            "urgent_levels": levels}


_TIMEOUT_RULE_RE = re.compile(r"^(send|drop)\s+after\s+(\S+)$")
TIMEOUT_EXAMPLE = 'approve_timeout = { routine = "drop after 2d", urgent = "send after 30m" }'


def parse_timeout_rule(text: str) -> TimeoutRule:
    """"send after 30m", "drop after 2d" or "never" -> its TimeoutRule. Raise ValueError."""
    if text.strip() == "never":
        return TimeoutRule()
    match = _TIMEOUT_RULE_RE.match(text.strip())
    if match is None:
        raise ValueError(f'expected "send after DURATION", "drop after DURATION" or "never", got "{text}"')
    after = parse_duration(match.group(2))
    if after <= timedelta(0):
        raise ValueError("the duration must be longer than 0s")
    return TimeoutRule(after, match.group(1))


def _approval_settings(table: _Table, values: dict[str, Any]) -> None:
    """Read `approve`, `approve_timeout` and `corrections` of a feed, [defaults] or a channel
    into `values`."""
    if table.has("approve"):
        values["approve"] = table.get("approve", bool, False)
    if table.has("corrections"):
        mode = table.get("corrections", str)
        if mode is not None and mode not in CORRECTION_MODES:
            table.error("corrections", f'expected "edit", "post", "ask" or "off", got "{mode}"')
        elif mode is not None:
            values["corrections"] = mode
    if not table.has("approve_timeout"):
        return
    raw = table.get("approve_timeout", dict, None)
    if raw is None:
        return
    rules: dict[str, TimeoutRule] = {}
    for key, text in raw.items():
        if key not in ("routine", "urgent"):
            table.error("approve_timeout", f'unknown key "{key}": expected routine and urgent, e.g. {TIMEOUT_EXAMPLE}')
        elif not isinstance(text, str):
            table.error("approve_timeout", f"{key}: expected a string, e.g. {TIMEOUT_EXAMPLE}")
        else:
            try:
                rules[key] = parse_timeout_rule(text)
            except ValueError as exc:
                table.error("approve_timeout", f"{key}: {exc}")
    default = ApproveTimeout()
    values["approve_timeout"] = ApproveTimeout(routine=rules.get("routine", default.routine),
                                               urgent=rules.get("urgent", default.urgent))


def _is_web(url: str) -> bool:
    return url.startswith(("http://", "https://"))


def _is_file_path(url: str) -> bool:
    """A local feed file (after `_feed_location`): neither a web URL nor another scheme."""
    return not _is_web(url) and "://" not in url and not url.startswith(("javascript:", "data:"))


def _feed_location(url: str, base_dir: Path, table: _Table) -> str:
    if _is_web(url):
        from urllib.parse import urlsplit

        if not urlsplit(url).hostname:
            table.error("url", f'"{url}" has no host name')
        return url
    if not _is_file_path(url):
        table.error("url", f'"{url}": only http(s) URLs or local file paths are supported')
        return url
    path = Path(url.removeprefix("file:")) if url.startswith("file:") else Path(url)
    return str(path if path.is_absolute() else (base_dir / path))


def _parse_alerts(table: _Table) -> AlertSettings:
    settings = AlertSettings(
        max_length=table.integer("max_length", 400, minimum=80),
        quiet_hours=table.converted("quiet_hours", parse_time_window, None),
        min_gap=table.converted("min_gap", parse_duration, timedelta(0)),
        urgent_keywords=tuple(k.lower() for k in table.strings("urgent_keywords")),
    )
    table.finish()
    return settings


def _parse_ops(table: _Table, channels: Mapping[str, ChannelConfig]) -> OpsSettings:
    channel = table.string("channel", None)
    if isinstance(channel, str) and channel not in channels:
        table.error("channel", f'unknown channel "{channel}"')
    settings = OpsSettings(
        channel=channel,
        min_interval=table.converted("min_interval", parse_duration, timedelta(hours=1)),
    )
    table.finish()
    return settings


LISTEN_EXAMPLE = "127.0.0.1:8470"
MIN_SESSION_TIMEOUT = timedelta(minutes=5)


def parse_listen(text: str) -> tuple[str, int]:
    """"HOST:PORT" -> (HOST, PORT), HOST an IP address ("[::1]:8470" for IPv6) or "localhost",
    PORT 1-65535. Raise ValueError with the expected form otherwise."""
    expected = (f'"{text}": expected ADDRESS:PORT, the address an IP of this machine (127.0.0.1, [::1], '
                f'0.0.0.0 for every interface) and the port 1-65535, e.g. "{LISTEN_EXAMPLE}"')
    host, colon, port_text = text.strip().rpartition(":")
    if not colon or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(expected)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            raise ValueError(expected)
    elif ":" in host:
        raise ValueError(expected + " (an IPv6 address goes in brackets)")
    if host != "localhost":
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(expected) from None
    return host, int(port_text)


def _parse_console(table: _Table, base_dir: Path, env: Mapping[str, str], resolve_secrets: bool) -> ConsoleSettings:
    token = None
    if table.has("metrics_token"):
        ref = table.string("metrics_token")
        if isinstance(ref, str):
            try:
                token = resolve_secret(ref, env, base_dir, read=resolve_secrets)
            except ValueError as exc:
                table.error("metrics_token", str(exc))
    settings = ConsoleSettings(
        listen=table.converted("listen", parse_listen, None),
        session_timeout=table.converted("session_timeout", parse_duration, timedelta(hours=8)),
        metrics_token=token,
    )
    if settings.session_timeout < MIN_SESSION_TIMEOUT:
        table.error("session_timeout", f"must be at least {format_duration(MIN_SESSION_TIMEOUT)}, "
                    f"got {format_duration(settings.session_timeout)}")
    table.finish()
    return settings


def _parse_channels(
    raw: Any, errors: list[str], base_dir: Path, env: Mapping[str, str], resolve_secrets: bool
) -> dict[str, ChannelConfig]:
    if not isinstance(raw, dict):
        errors.append(f"channels: expected [channels.NAME] tables, got {_kind(raw)}")
        return {}
    channels: dict[str, ChannelConfig] = {}
    for name, entry in raw.items():
        table = _Table(entry, f"channels.{name}", errors)
        if not isinstance(entry, dict):
            table.flush()
            continue
        if not _CHANNEL_NAME_RE.match(name):
            table.error("", f'channel name "{name}" may contain only letters, digits, "-" and "_"')
        kind = table.string("type", required=True)
        if kind not in CHANNEL_TYPES:
            if isinstance(kind, str) and kind.strip():
                table.error("type", f'unknown channel type "{kind}" (expected one of {", ".join(CHANNEL_TYPES)})')
            # Without a type its other keys cannot be judged, so they are not called unknown;
            # the name is still defined, so feeds naming it do not add "unknown channel".
            table.flush()
            channels[name] = ChannelConfig(name=name, type=str(kind))
            continue
        allowed = _CHANNEL_COMMON | _CHANNEL_KEYS[kind]
        for key in list(table.data):
            if key not in allowed:
                table.used.add(key)
                table.error(key, f'not a setting of a "{kind}" channel' + _suggest(key, allowed))
        values: dict[str, Any] = {"name": name, "type": kind}
        for key in ("url", "api_url", "service"):
            if key in allowed and table.has(key):
                url = table.string(key)
                if isinstance(url, str) and not url.startswith(("http://", "https://")):
                    table.error(key, f'expected an http(s) URL, got "{url}"')
                elif isinstance(url, str):
                    values[key] = url.rstrip("/")
        required = {"waha": ("url", "chat_id"), "whapi": ("chat_id", "token"),
                    "telegram": ("chat_id", "token"), "mastodon": ("url", "token"),
                    "webhook": ("url",), "facebook": ("page_id", "token"),
                    "bluesky": ("handle", "app_password")}.get(kind, ())
        for key in required:
            if not table.has(key):
                table.error(key, f'is required for a "{kind}" channel')
        for key in ("session", "chat_id", "visibility", "language", "template", "handle"):
            if key in allowed and table.has(key):
                value = table.string(key)
                if value is not None:
                    values[key] = value
        chat_id = values.get("chat_id")
        if kind == "waha" and isinstance(chat_id, str) and not chat_id.endswith("@newsletter"):
            table.error("chat_id", f'"{chat_id}" is not a WhatsApp Channel: a Channel\'s id ends in "@newsletter" '
                        "(WAHA lists the Channels its account runs at GET /api/SESSION/channels?role=OWNER)")
        if isinstance(values.get("template"), str):
            try:
                parse_template(values["template"])
            except TemplateError as exc:
                table.error("template", f"{exc} ({exc.hint})")
        if kind == "facebook":
            _facebook_settings(table, values)
        if values.get("visibility", "public") not in ("public", "unlisted", "private", "direct"):
            table.error("visibility", 'expected "public", "unlisted", "private" or "direct"')
        for key in ("api_key", "token", "secret", "app_password"):
            if key in allowed and table.has(key):
                ref = table.string(key)
                if isinstance(ref, str):
                    try:
                        values[key] = resolve_secret(ref, env, base_dir, read=resolve_secrets)
                    except ValueError as exc:
                        table.error(key, str(exc))
        if table.has("images"):
            values["images"] = table.get("images", bool, False)
        if table.has("card"):
            card = table.string("card")
            if card in CARD_MODES:
                values["card"] = card
            elif isinstance(card, str):
                table.error("card", f'expected "auto", "always" or "never", got "{card}"')
        if table.has("max_per_day"):
            values["max_per_day"] = table.integer("max_per_day", None, minimum=1)
        if table.has("max_length"):
            values["max_length"] = table.integer("max_length", None, minimum=80)
        if table.has("timeout"):
            values["timeout"] = table.converted("timeout", parse_duration, timedelta(seconds=30))
        _approval_settings(table, values)
        if table.has("utm"):
            utm = table.get("utm", dict, {})
            if any(not isinstance(v, str) for v in utm.values()):
                table.error("utm", "expected a table of strings, e.g. { utm_source = \"whatsapp\" }")
            else:
                values["utm"] = dict(utm)
        table.finish()
        channels[name] = ChannelConfig(**values)
    return channels


def _facebook_settings(table: _Table, values: dict[str, Any]) -> None:
    """`page_id` (the Page's numeric id) and `api_version` ("v25.0") of a facebook channel."""
    if table.has("page_id"):
        page_id = table.string("page_id")
        if isinstance(page_id, str) and not (page_id.isascii() and page_id.isdigit()):
            table.error("page_id", f'expected the Page\'s numeric id (its "Page ID" in the Page\'s '
                        f'"About" > "Page transparency"), got "{page_id}"')
        elif isinstance(page_id, str):
            values["page_id"] = page_id
    if table.has("api_version"):
        version = table.string("api_version")
        if isinstance(version, str) and not _GRAPH_VERSION_RE.match(version):
            table.error("api_version", f'expected a Graph API version such as "{DEFAULT_GRAPH_API_VERSION}", '
                        f'got "{version}"')
        elif isinstance(version, str):
            values["api_version"] = version


_COLOUR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
COLOURS_EXAMPLE = 'colours = { default = "#0066cc", "protezione civile" = "#b71c1c" }'


def _parse_cards(table: _Table, base_dir: Path) -> CardSettings:
    """`[cards]`: the crest's path (its file is judged by `check`, see `machine_problems`), the
    comune's name, the band colours."""
    values: dict[str, Any] = {}
    crest = table.string("crest")
    if isinstance(crest, str):
        if not crest.strip():
            table.error("crest", 'must name an image file beside the config, e.g. crest = "stemma.png"')
        else:
            values["crest"] = Path(crest) if Path(crest).is_absolute() else base_dir / crest
            values["crest_text"] = crest
    name = table.string("name")
    if isinstance(name, str):
        if not name.strip():
            table.error("name", 'must not be empty (leave it out to show each feed\'s name)')
        else:
            values["name"] = " ".join(name.split())
    colours = table.get("colours", dict, {})
    mapping: dict[str, str] = {}
    for key, colour in colours.items():
        if not isinstance(colour, str) or not _COLOUR_RE.match(colour):
            table.error("colours", f'"{key}": expected a colour "#rrggbb", got {_show(colour)} '
                        f"(e.g. {COLOURS_EXAMPLE})")
        elif not key.strip():
            table.error("colours", f"a colour needs a category word or a feed id as its key (e.g. {COLOURS_EXAMPLE})")
        elif key == "default":
            values["default_colour"] = colour.lower()
        else:
            mapping[key.strip().casefold()] = colour.lower()
    values["colours"] = mapping
    table.finish()
    return CardSettings(**values)


def machine_problems(config: Config) -> list[str]:
    """Return what a valid config names that this machine does not have: local feed files
    that do not exist or cannot be read, a crest that is not an image file. `check` refuses
    them (a file may appear later, so `run` polls the feed and reports it failing instead, and
    draws cards without the crest)."""
    problems = []
    for index, feed in enumerate(config.feeds):
        if not feed.is_local:
            continue
        path = Path(feed.url)
        where = f'feeds[{index}] (id="{feed.id}").url'
        if not path.exists():
            problems.append(f"{where}: the file {path} does not exist (a relative path is taken from the "
                            "config file's directory; give the right path, or an http(s) URL)")
        elif not path.is_file() or not os.access(path, os.R_OK):
            problems.append(f"{where}: {path} is not a readable file")
    if config.cards.crest is not None:
        from bridge.cards import crest_problem  # Pillow, only when there is a crest to judge

        problem = crest_problem(config.cards)
        if problem:
            problems.append(f"cards.crest: {problem}")
    return problems


def config_warnings(config: Config) -> list[str]:
    """Return advice about a valid config that `check` prints without failing."""
    warnings = []
    for index, feed in enumerate(config.feeds):
        if feed.interval < RECOMMENDED_MIN_INTERVAL:
            warnings.append(
                f'feeds[{index}] (id="{feed.id}").interval: {format_duration(feed.interval)} is '
                "very short; municipal web servers are small, prefer 5m or more except for emergencies"
            )
    backfill = _backfill_warning(config)
    if backfill:
        warnings.append(backfill)
    return warnings


def _backfill_warning(config: Config) -> str | None:
    """A warning when the feeds' first polls may queue thousands of posts (feeds × backfill)."""
    per_channel: dict[str, int] = {}
    for feed in config.feeds:
        for channel in feed.channels:
            per_channel[channel] = per_channel.get(channel, 0) + feed.backfill
    total = sum(per_channel.values())
    if total < BACKFILL_WARNING:
        return None
    busiest, count = max(per_channel.items(), key=lambda pair: pair[1])
    text = (f"backfill: the first polls of {len(config.feeds)} feeds may queue up to {total:,} posts "
            f"({count:,} on \"{busiest}\")")
    gap = config.alerts.min_gap
    if gap and config.channels[busiest].type != "console":
        seconds = count * gap.total_seconds()
        took = timedelta(hours=round(seconds / 3600)) if seconds >= 86400 else timedelta(minutes=round(seconds / 60))
        text += f", which at one post every {format_duration(gap)} take {format_duration(took)}"
    return text + "; keep backfill at a few items, or add feeds a few at a time"


INSTALLED_CONFIG = Path("/etc/channel-bridge/config.toml")


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the config is when --config is not given: $CHANNEL_BRIDGE_CONFIG, else
    $CONFIGURATION_DIRECTORY/config.toml (systemd), else ./config.toml, else (when there is
    none) the installed /etc/channel-bridge/config.toml."""
    env = os.environ if env is None else env
    if env.get("CHANNEL_BRIDGE_CONFIG"):
        return Path(env["CHANNEL_BRIDGE_CONFIG"])
    if env.get("CONFIGURATION_DIRECTORY"):
        return Path(env["CONFIGURATION_DIRECTORY"].split(":")[0]) / "config.toml"
    local = Path("config.toml")
    # An operator's shell on the server (`channel-bridge status`) finds the installed config.
    if not local.exists() and INSTALLED_CONFIG.exists():
        return INSTALLED_CONFIG
    return local
