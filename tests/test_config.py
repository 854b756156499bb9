"""The strict config loader: typed values from a full file, and the exact line an operator
reads for each broken one (SPEC 4).

Every test passes `env=` to `load_config`, so nothing depends on the machine's environment.
"""

from __future__ import annotations

import dataclasses
import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest

from bridge.config import (
    ConfigError,
    Secret,
    TimeWindow,
    config_warnings,
    default_config_path,
    format_duration,
    load_config,
    parse_duration,
    parse_time_window,
)

REPO_ROOT = Path(__file__).parent.parent
WAHA_KEY = "waha-key-0123456789"


def write(directory: Path, text: str, name: str = "config.toml") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def errors_of(directory: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(directory, text), env={} if env is None else env)
    return caught.value.errors


# ---------------------------------------------------------------------------
# A valid file with every key

FULL = """\
[bridge]
state_dir = "state"
timezone = "Europe/Rome"
user_agent = "channel-bridge (+https://www.comune.example.it)"
fetch_timeout = "45s"
max_feed_bytes = 2097152

[defaults]
interval = "5m"
channels = ["whatsapp"]
max_age = "7d"
backfill = 2
include = ["scuole"]
exclude = ["concorso"]
urgent = false
link_domains = ["comune.example.it"]
fetch_article = "never"

[[feeds]]
id = "notizie"
name = "Notizie dal Comune"
url = "https://www.comune.example.it/feed/?post_type=notizia"

[[feeds]]
id = "protezione-civile"
name = "Protezione civile"
url = "feeds/pc.xml"
interval = "1h30m"
channels = ["whatsapp", "terminale"]
max_age = "2d"
backfill = 0
include = []
exclude = [" test "]
urgent = true
link_domains = ["protezionecivile.gov.it"]
fetch_article = "always"

[alerts]
max_length = 500
quiet_hours = "22:00-07:00"
min_gap = "2m"
urgent_keywords = ["Allerta", "protezione civile"]

[channels.whatsapp]
type = "waha"
url = "http://127.0.0.1:3000/"
session = "comune"
chat_id = "120363000000000000@newsletter"
api_key = "env:WAHA_API_KEY"
images = true
max_per_day = 20
max_length = 300
utm = { utm_source = "whatsapp", utm_medium = "channel" }
template = "{title}"
timeout = "10s"

[channels.terminale]
type = "console"

[ops]
channel = "terminale"
min_interval = "30m"
"""


def test_full_config_gives_typed_values(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), env={"WAHA_API_KEY": WAHA_KEY})
    base = tmp_path.resolve()

    assert config.path == base / "config.toml"
    assert config.bridge.state_dir == base / "state"
    assert config.bridge.timezone.key == "Europe/Rome"
    assert config.bridge.user_agent == "channel-bridge (+https://www.comune.example.it)"
    assert config.bridge.fetch_timeout == timedelta(seconds=45)
    assert config.bridge.max_feed_bytes == 2097152

    notizie, pc = config.feeds
    # Everything inherited from [defaults].
    assert notizie.id == "notizie"
    assert notizie.name == "Notizie dal Comune"
    assert notizie.url == "https://www.comune.example.it/feed/?post_type=notizia"
    assert not notizie.is_local
    assert notizie.interval == timedelta(minutes=5)
    assert notizie.channels == ("whatsapp",)
    assert notizie.max_age == timedelta(days=7)
    assert notizie.backfill == 2
    assert notizie.include == ("scuole",)
    assert notizie.exclude == ("concorso",)
    assert notizie.urgent is False
    assert notizie.link_domains == ("comune.example.it",)
    assert notizie.fetch_article == "never"
    # Every override wins, even an empty list.
    assert pc.url == str(base / "feeds" / "pc.xml")
    assert pc.is_local
    assert pc.interval == timedelta(hours=1, minutes=30)
    assert pc.channels == ("whatsapp", "terminale")
    assert pc.max_age == timedelta(days=2)
    assert pc.backfill == 0
    assert pc.include == ()
    assert pc.exclude == ("test",)
    assert pc.urgent is True
    assert pc.link_domains == ("protezionecivile.gov.it",)
    assert pc.fetch_article == "always"
    assert config.feed("protezione-civile") is pc
    with pytest.raises(KeyError):
        config.feed("eventi")

    alerts = config.alerts
    assert alerts.max_length == 500
    assert alerts.quiet_hours == TimeWindow(time(22, 0), time(7, 0))
    assert alerts.min_gap == timedelta(minutes=2)
    assert alerts.urgent_keywords == ("allerta", "protezione civile")

    assert list(config.channels) == ["whatsapp", "terminale"]
    waha = config.channels["whatsapp"]
    assert waha.type == "waha"
    assert waha.url == "http://127.0.0.1:3000"
    assert waha.session == "comune"
    assert waha.chat_id == "120363000000000000@newsletter"
    assert waha.images is True
    assert waha.max_per_day == 20
    assert waha.max_length == 300
    assert dict(waha.utm) == {"utm_source": "whatsapp", "utm_medium": "channel"}
    assert waha.template == "{title}"
    assert waha.timeout == timedelta(seconds=10)
    console = config.channels["terminale"]
    assert (console.type, console.url, console.api_key) == ("console", None, None)
    assert console.timeout == timedelta(seconds=30)

    assert config.ops.channel == "terminale"
    assert config.ops.min_interval == timedelta(minutes=30)


def test_secret_is_resolved_and_never_shown(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), env={"WAHA_API_KEY": WAHA_KEY})
    secret = config.channels["whatsapp"].api_key
    assert secret is not None
    assert secret.value == WAHA_KEY
    assert str(secret) == "env:WAHA_API_KEY"
    assert WAHA_KEY not in repr(secret)
    # Nowhere in the whole config's repr either (what a log line or a debugger would show).
    assert WAHA_KEY not in repr(config)
    assert WAHA_KEY not in str(config)


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, FULL), env={"WAHA_API_KEY": WAHA_KEY})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.feeds[0].interval = timedelta(0)  # type: ignore[misc]


def test_state_directory_from_systemd_wins(tmp_path: Path) -> None:
    systemd_state = tmp_path / "systemd-state"
    env = {"WAHA_API_KEY": WAHA_KEY, "STATE_DIRECTORY": f"{systemd_state}:{tmp_path / 'second'}"}
    config = load_config(write(tmp_path, FULL), env=env)
    assert config.bridge.state_dir == systemd_state


def test_absolute_state_dir_and_defaults_when_bridge_is_absent(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere"
    config = load_config(
        write(
            tmp_path,
            f"""\
            [bridge]
            state_dir = "{absolute}"
            [[feeds]]
            id = "notizie"
            url = "https://www.comune.example.it/feed/"
            channels = ["out"]
            [channels.out]
            type = "console"
            """,
        ),
        env={},
    )
    assert config.bridge.state_dir == absolute
    feed = config.feeds[0]
    assert (feed.name, feed.interval, feed.max_age, feed.backfill, feed.fetch_article) == (
        "notizie", timedelta(minutes=5), timedelta(days=7), 0, "auto",
    )
    assert config.alerts.quiet_hours is None
    assert config.alerts.max_length == 400
    assert config.ops.channel is None


def test_config_path_relative_to_cwd_resolves_against_its_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    write(tmp_path / "etc", FULL)
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("etc/config.toml"), env={"WAHA_API_KEY": WAHA_KEY})
    base = (tmp_path / "etc").resolve()
    assert config.bridge.state_dir == base / "state"
    assert config.feed("protezione-civile").url == str(base / "feeds" / "pc.xml")


@pytest.mark.parametrize(
    ("ref", "files", "env", "expected"),
    [
        ("env:WAHA_API_KEY", {}, {"WAHA_API_KEY": "from-env"}, "from-env"),
        # relative to the config file, surrounding whitespace (a trailing newline) stripped
        ("file:secrets/waha.key", {"secrets/waha.key": "from-file\n"}, {}, "from-file"),
        ("credential:waha", {"creds/waha": " from-credential \n"}, {"CREDENTIALS_DIRECTORY": "{dir}/creds"},
         "from-credential"),
    ],
    ids=["env", "file", "credential"],
)
def test_secret_sources(
    tmp_path: Path, ref: str, files: dict[str, str], env: dict[str, str], expected: str
) -> None:
    for name, content in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(content, encoding="utf-8")
    env = {key: value.replace("{dir}", str(tmp_path)) for key, value in env.items()}
    config = load_config(write(tmp_path, WAHA_CONFIG.format(api_key=ref)), env=env)
    secret = config.channels["whatsapp"].api_key
    assert secret == Secret(ref, expected)
    assert expected not in repr(config)


def test_file_secret_with_absolute_path(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "waha.key"
    key_file.parent.mkdir()
    key_file.write_text("absolute-secret", encoding="utf-8")
    (tmp_path / "etc").mkdir()
    config = load_config(write(tmp_path / "etc", WAHA_CONFIG.format(api_key=f"file:{key_file}")), env={})
    assert config.channels["whatsapp"].api_key == Secret(f"file:{key_file}", "absolute-secret")


# ---------------------------------------------------------------------------
# Broken files: the exact lines an operator reads

BASE = """\
[bridge]
{bridge}
[defaults]
channels = ["out"]
{defaults}
[[feeds]]
id = "notizie"
url = "https://www.comune.example.it/feed/"
{feed}
[alerts]
{alerts}
[channels.out]
type = "console"
{channel}
{tail}
"""


def base(bridge: str = "", defaults: str = "", feed: str = "", alerts: str = "", channel: str = "",
         tail: str = "") -> str:
    """The minimal valid file, with lines added to its sections."""
    return BASE.format(bridge=bridge, defaults=defaults, feed=feed, alerts=alerts, channel=channel, tail=tail)


WAHA_CONFIG = """\
[[feeds]]
id = "notizie"
url = "https://www.comune.example.it/feed/"
channels = ["whatsapp"]

[channels.whatsapp]
type = "waha"
url = "http://127.0.0.1:3000"
chat_id = "120363000000000000@newsletter"
api_key = "{api_key}"
"""

F = 'feeds[0] (id="notizie")'

# (id, file text, environment, the exact error lines). "{dir}" stands for the config's directory.
BROKEN: list[tuple[str, str, dict[str, str], list[str]]] = [
    ("toml-syntax", '[bridge]\ntimezone = "Europe/Rome"\nstate_dir = \n', {},
     ["TOML syntax error: Invalid value (at line 3, column 13)"]),
    ("toml-duplicate-key", base(bridge='timezone = "Europe/Rome"\ntimezone = "UTC"'), {},
     ["TOML syntax error: Cannot overwrite a value (at line 3, column 17)"]),
    ("unknown-top-level-key", base(tail='[alert]\nmax_length = 300'), {},
     ['alert: unknown key (did you mean "alerts"?)']),
    ("key-after-a-table-belongs-to-it", base(tail='verbose = true'), {},
     ["channels.out.verbose: not a setting of a \"console\" channel"]),  # TOML puts it in the last table
    ("unknown-key-bridge", base(bridge='state_dri = "state"'), {},
     ['bridge.state_dri: unknown key (did you mean "state_dir"?)']),
    ("unknown-key-alerts", base(alerts='quiet_hour = "22:00-07:00"'), {},
     ['alerts.quiet_hour: unknown key (did you mean "quiet_hours"?)']),
    ("unknown-key-defaults", base(defaults='max_eta = "7d"'), {},
     ['defaults.max_eta: unknown key (did you mean "max_age"?)']),
    ("unknown-key-feed", base(feed='intervall = "5m"'), {},
     [f'{F}.intervall: unknown key (did you mean "interval"?)']),
    ("unknown-key-feed-url", base(feed='urll = "https://www.comune.example.it/feed/"'), {},
     [f'{F}.urll: unknown key (did you mean "url"?)']),
    ("unknown-key-ops", base(tail='[ops]\nchanel = "out"'), {},
     ['ops.chanel: unknown key (did you mean "channel"?)']),
    ("unknown-key-channel", base(channel='templat = "{title}"'), {},
     ['channels.out.templat: not a setting of a "console" channel (did you mean "template"?)']),
    ("key-of-another-channel-type", WAHA_CONFIG.format(api_key="env:K") + 'token = "env:K"\napikey = "x"\n',
     {"K": "k"},
     ['channels.whatsapp.token: not a setting of a "waha" channel',
      'channels.whatsapp.apikey: not a setting of a "waha" channel (did you mean "api_key"?)']),
    ("string-for-int", base(alerts='max_length = "400"'), {},
     ['alerts.max_length: expected an integer, got a string "400"']),
    ("int-for-string", base(feed="name = 5"), {},
     [f"{F}.name: expected a string, got an integer 5"]),
    ("bool-for-int", base(feed="backfill = true"), {},
     [f"{F}.backfill: expected an integer, got a boolean true"]),
    ("float-for-int", base(bridge="max_feed_bytes = 1.5e6"), {},
     ["bridge.max_feed_bytes: expected an integer, got a number 1500000.0"]),
    ("string-for-bool", base(feed='urgent = "yes"'), {},
     [f'{F}.urgent: expected true or false, got a string "yes"']),
    ("string-for-list", base(feed='include = "scuole"'), {},
     [f'{F}.include: expected a list, got a string "scuole"']),
    ("list-of-non-strings", base(alerts='urgent_keywords = ["allerta", 3]'), {},
     ["alerts.urgent_keywords: expected a list of non-empty strings, got ['allerta', 3]"]),
    ("list-with-blank-string", base(feed='exclude = ["concorso", " "]'), {},
     [f"{F}.exclude: expected a list of non-empty strings, got ['concorso', ' ']"]),
    ("table-for-string", base(bridge='timezone = { name = "Europe/Rome" }'), {},
     ["bridge.timezone: expected a string, got a table {...}"]),
    ("duration-words", base(feed='interval = "5 minuti"'), {},
     [f'{F}.interval: expected a duration like "5m", got "5 minuti"']),
    ("duration-no-unit", base(feed='interval = "5"'), {},
     [f'{F}.interval: expected a duration like "5m", got "5"']),
    ("duration-negative", base(defaults='max_age = "-1m"'), {},
     ['defaults.max_age: expected a duration like "5m", got "-1m"']),
    ("duration-empty", base(alerts='min_gap = ""'), {},
     ['alerts.min_gap: expected a duration like "5m", got ""']),
    ("duration-number", base(feed="interval = 300"), {},
     [f"{F}.interval: expected a string, got an integer 300"]),
    ("duration-too-long", base(feed='max_age = "99999999999d"'), {},
     [f'{F}.max_age: "99999999999d" is too long a duration']),
    ("interval-zero", base(feed='interval = "0s"'), {},
     [f"{F}.interval: must be at least 1s"]),
    ("max-age-zero", base(defaults='max_age = "0d"'), {},
     ["defaults.max_age: must be longer than 0s"]),
    ("fetch-timeout-zero", base(bridge='fetch_timeout = "0s"'), {},
     ["bridge.fetch_timeout: must be longer than 0s"]),
    ("window-without-minutes", base(alerts='quiet_hours = "22-07"'), {},
     ['alerts.quiet_hours: expected a time window like "22:00-07:00", got "22-07"']),
    ("window-hour-25", base(alerts='quiet_hours = "25:00-07:00"'), {},
     ['alerts.quiet_hours: "25:00-07:00" is not a valid time of day range (hours 00-23, minutes 00-59)']),
    ("window-empty", base(alerts='quiet_hours = "22:00-22:00"'), {},
     ['alerts.quiet_hours: "22:00-22:00" starts and ends at the same time; remove the key instead']),
    ("timezone", base(bridge='timezone = "Europe/Roma"'), {},
     ['bridge.timezone: unknown time zone "Europe/Roma" (expected a name like "Europe/Rome")']),
    ("timezone-path", base(bridge='timezone = "../etc/passwd"'), {},
     ['bridge.timezone: unknown time zone "../etc/passwd" (expected a name like "Europe/Rome")']),
    ("max-feed-bytes-small", base(bridge="max_feed_bytes = 100"), {},
     ["bridge.max_feed_bytes: must be at least 1024, got 100"]),
    ("duplicate-feed-id", base(tail='[[feeds]]\nid = "notizie"\nurl = "https://www.comune.example.it/altro/"'), {},
     ['feeds[1] (id="notizie").id: duplicate feed id "notizie" (also feeds[0])']),
    ("feed-id-characters", base().replace('id = "notizie"', 'id = "Notizie_1"'), {},
     ['feeds[0] (id="Notizie_1").id: "Notizie_1" may contain only a-z, 0-9 and "-" (it names the feed\'s state)']),
    ("feed-id-ops", base().replace('id = "notizie"', 'id = "ops"'), {},
     ['feeds[0] (id="ops").id: "ops" is the name of the bridge\'s own ops alerts; give the feed another id']),
    ("feed-id-missing", base().replace('id = "notizie"\n', ""), {},
     ["feeds[0].id: is required"]),
    ("feed-id-empty", base().replace('id = "notizie"', 'id = ""'), {},
     ['feeds[0] (id="").id: must not be empty']),
    ("feed-url-missing", base().replace('url = "https://www.comune.example.it/feed/"\n', ""), {},
     [f"{F}.url: is required"]),
    ("feed-url-javascript", base().replace("https://www.comune.example.it/feed/", "javascript:alert(1)"), {},
     [f'{F}.url: "javascript:alert(1)": only http(s) URLs or local file paths are supported']),
    ("feed-url-ftp", base().replace("https://www.comune.example.it/feed/", "ftp://comune.example.it/feed"), {},
     [f'{F}.url: "ftp://comune.example.it/feed": only http(s) URLs or local file paths are supported']),
    ("feed-url-no-host", base().replace("https://www.comune.example.it/feed/", "https:///feed"), {},
     [f'{F}.url: "https:///feed" has no host name']),
    ("feeds-missing", '[channels.out]\ntype = "console"\n', {},
     ["feeds: no [[feeds]] defined: add at least one feed"]),
    ("feeds-as-table", '[feeds]\nid = "notizie"\n[channels.out]\ntype = "console"\n', {},
     ["feeds: expected [[feeds]] tables, got a table"]),
    ("unknown-channel-reference", base(feed='channels = ["telegram"]'), {},
     [f'{F}.channels: unknown channel "telegram" (channels: out)']),
    ("empty-channel-list", base(feed="channels = []"), {},
     [f"{F}.channels: must name at least one channel"]),
    ("no-channels-anywhere", '[[feeds]]\nid = "notizie"\nurl = "https://www.comune.example.it/feed/"\n', {},
     [f"{F}.channels: no channel to post to: set channels = [...] here or in [defaults]"]),
    ("no-channels-defined", '[defaults]\nchannels = ["whatsapp"]\n'
     '[[feeds]]\nid = "notizie"\nurl = "https://www.comune.example.it/feed/"\n', {},
     ['defaults.channels: unknown channel "whatsapp" (channels: none is defined)']),
    ("defaults-channels-not-a-list", base().replace('channels = ["out"]', 'channels = "out"'), {},
     ['defaults.channels: expected a list, got a string "out"']),  # and no cascade into every feed
    ("secret-env-missing", WAHA_CONFIG.format(api_key="env:WAHA_API_KEY"), {"OTHER": "x"},
     ["channels.whatsapp.api_key: environment variable WAHA_API_KEY is not set (or is empty)"]),
    ("secret-env-empty", WAHA_CONFIG.format(api_key="env:WAHA_API_KEY"), {"WAHA_API_KEY": ""},
     ["channels.whatsapp.api_key: environment variable WAHA_API_KEY is not set (or is empty)"]),
    ("secret-without-name", WAHA_CONFIG.format(api_key="env:"), {},
     ['channels.whatsapp.api_key: "env:" needs a name after the colon']),
    ("secret-literal", WAHA_CONFIG.format(api_key="sk-live-123456"), {},
     ['channels.whatsapp.api_key: secrets are never written literally in config.toml: '
      'use "env:NAME", "file:PATH" or "credential:NAME"']),
    ("secret-file-unreadable", WAHA_CONFIG.format(api_key="file:missing.key"), {},
     ["channels.whatsapp.api_key: cannot read {dir}/missing.key: No such file or directory"]),
    ("secret-file-empty", WAHA_CONFIG.format(api_key="file:empty.key"), {},
     ["channels.whatsapp.api_key: {dir}/empty.key is empty"]),
    ("secret-credential-outside-systemd", WAHA_CONFIG.format(api_key="credential:waha"), {},
     ["channels.whatsapp.api_key: credential:waha needs systemd's LoadCredential= "
      "($CREDENTIALS_DIRECTORY is not set; outside systemd use env: or file:)"]),
    ("secret-credential-missing", WAHA_CONFIG.format(api_key="credential:waha"), {"CREDENTIALS_DIRECTORY": "{dir}"},
     ["channels.whatsapp.api_key: cannot read {dir}/waha: No such file or directory"]),
    ("channel-missing-required", '[[feeds]]\nid = "notizie"\nurl = "https://www.comune.example.it/feed/"\n'
     'channels = ["whatsapp"]\n[channels.whatsapp]\ntype = "waha"\nsession = "default"\n', {},
     ['channels.whatsapp.url: is required for a "waha" channel',
      'channels.whatsapp.chat_id: is required for a "waha" channel']),
    ("channel-url-scheme", WAHA_CONFIG.format(api_key="env:K").replace("http://127.0.0.1:3000", "127.0.0.1:3000"),
     {"K": "k"},
     ['channels.whatsapp.url: expected an http(s) URL, got "127.0.0.1:3000"']),
    ("channel-type-missing", base(tail='[channels.spare]\nurl = "http://127.0.0.1:3000"'), {},
     ["channels.spare.type: is required"]),  # its other keys are not called unknown
    ("channel-type-not-string", base(tail='[channels.spare]\ntype = 1\nurl = "http://127.0.0.1:3000"'), {},
     ["channels.spare.type: expected a string, got an integer 1"]),
    ("channel-type-unknown", base(tail='[channels.sms]\ntype = "sms"\n[ops]\nchannel = "sms"'), {},
     ['channels.sms.type: unknown channel type "sms" (expected one of waha, whapi, telegram, mastodon, '
      'webhook, console, facebook, bluesky)']),  # and [ops], which names it, adds nothing
    ("channel-name", base(tail='[channels."canale principale"]\ntype = "console"'), {},
     ['channels.canale principale: channel name "canale principale" may contain only letters, digits, "-" and "_"']),
    ("channel-not-a-table", base(tail="[channels]\nspare = 3"), {},
     ["channels.spare: expected a table, got an integer"]),
    ("channel-max-length-small", base(channel="max_length = 79"), {},
     ["channels.out.max_length: must be at least 80, got 79"]),
    ("channel-max-per-day-zero", base(channel="max_per_day = 0"), {},
     ["channels.out.max_per_day: must be at least 1, got 0"]),
    ("channel-utm-not-strings", base(channel="utm = { utm_source = 1 }"), {},
     ['channels.out.utm: expected a table of strings, e.g. { utm_source = "whatsapp" }']),
    ("channel-timeout", base(channel='timeout = "30 secondi"'), {},
     ['channels.out.timeout: expected a duration like "5m", got "30 secondi"']),
    ("ops-channel-unknown", base(tail='[ops]\nchannel = "admin"'), {},
     ['ops.channel: unknown channel "admin"']),
    ("ops-min-interval", base(tail='[ops]\nmin_interval = "1 ora"'), {},
     ['ops.min_interval: expected a duration like "5m", got "1 ora"']),
    ("alerts-max-length-small", base(alerts="max_length = 50"), {},
     ["alerts.max_length: must be at least 80, got 50"]),
    ("backfill-negative", base(feed="backfill = -1"), {},
     [f"{F}.backfill: must be at least 0, got -1"]),
    ("fetch-article", base(feed='fetch_article = "sometimes"'), {},
     [f'{F}.fetch_article: expected "auto", "always" or "never", got "sometimes"']),
    ("section-not-a-table", 'alerts = "none"\n' + base().replace("[alerts]\n", ""), {},
     ["alerts: expected a table, got a string"]),
]


@pytest.mark.parametrize(("text", "env", "expected"), [case[1:] for case in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_config_names_place_and_problem(
    tmp_path: Path, text: str, env: dict[str, str], expected: list[str]
) -> None:
    (tmp_path / "empty.key").write_text("\n", encoding="utf-8")
    directory = str(tmp_path.resolve())
    env = {key: value.replace("{dir}", directory) for key, value in env.items()}
    assert errors_of(tmp_path, text, env) == [line.replace("{dir}", directory) for line in expected]


def test_broken_table_is_large_enough() -> None:
    assert len(BROKEN) >= 25
    assert len({case[0] for case in BROKEN}) == len(BROKEN)


OTHER_TYPES = {
    "whapi": 'url = "https://gate.whapi.cloud"\nchat_id = "120363000000000000@newsletter"\ntoken = "env:T"',
    "telegram": 'api_url = "https://api.telegram.org/"\nchat_id = "@comune_example"\ntoken = "env:T"',
    "mastodon": 'url = "https://social.example.it"\ntoken = "file:t.key"\nvisibility = "unlisted"\nlanguage = "it"',
    "webhook": 'url = "https://hooks.example.it/alerts"\nsecret = "env:T"',
}


@pytest.mark.parametrize("kind", sorted(OTHER_TYPES))
def test_every_channel_type_is_accepted_with_its_keys(tmp_path: Path, kind: str) -> None:
    (tmp_path / "t.key").write_text("s3cr3t-value", encoding="utf-8")
    text = base(tail=f'[channels.later]\ntype = "{kind}"\n{OTHER_TYPES[kind]}\nimages = true\ntimeout = "5s"')
    channel = load_config(write(tmp_path, text), env={"T": "s3cr3t-value"}).channels["later"]
    assert (channel.type, channel.images, channel.timeout) == (kind, True, timedelta(seconds=5))
    assert "s3cr3t-value" not in repr(channel)


@pytest.mark.parametrize(
    ("kind", "keys", "expected"),
    [
        ("telegram", 'chat_id = "@comune"\nsession = "x"',
         ['channels.later.session: not a setting of a "telegram" channel',
          'channels.later.token: is required for a "telegram" channel']),
        ("whapi", 'url = "https://gate.whapi.cloud"\ntoken = "env:MISSING"',
         ["channels.later.token: environment variable MISSING is not set (or is empty)",
          'channels.later.chat_id: is required for a "whapi" channel']),
        ("mastodon", 'url = "https://social.example.it"\ntoken = "env:T"\nvisibility = "everyone"',
         ['channels.later.visibility: expected "public", "unlisted", "private" or "direct"']),
        ("webhook", 'url = "hooks.example.it"\nsecret = "plain"',
         ['channels.later.url: expected an http(s) URL, got "hooks.example.it"',
          'channels.later.secret: secrets are never written literally in config.toml: '
          'use "env:NAME", "file:PATH" or "credential:NAME"']),
    ],
)
def test_each_channel_type_reports_its_key_errors(
    tmp_path: Path, kind: str, keys: str, expected: list[str]
) -> None:
    text = base(tail=f'[channels.later]\ntype = "{kind}"\n{keys}')
    assert errors_of(tmp_path, text, {"T": "token"}) == expected


def test_every_error_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    text = """\
    [alerts]
    quiet_hours = "22-07"

    [bridge]
    timezone = "Europe/Roma"
    state_dri = "state"

    [[feeds]]
    id = "notizie"
    url = "https://www.comune.example.it/feed/"
    channels = ["out"]
    intervall = "5m"
    max_age = "5 minuti"

    [[feeds]]
    id = "eventi"
    url = "https://www.comune.example.it/eventi/"
    channels = ["out"]
    interval = "5 minuti"

    [channels.out]
    type = "console"
    colour = "blue"

    [opts]
    channel = "out"
    """
    assert errors_of(tmp_path, text) == [
        'alerts.quiet_hours: expected a time window like "22:00-07:00", got "22-07"',
        'bridge.timezone: unknown time zone "Europe/Roma" (expected a name like "Europe/Rome")',
        'bridge.state_dri: unknown key (did you mean "state_dir"?)',
        'feeds[0] (id="notizie").intervall: unknown key (did you mean "interval"?)',
        'feeds[0] (id="notizie").max_age: expected a duration like "5m", got "5 minuti"',
        'feeds[1] (id="eventi").interval: expected a duration like "5m", got "5 minuti"',
        'channels.out.colour: not a setting of a "console" channel',
        'opts: unknown key (did you mean "ops"?)',
    ]


def test_config_error_message_carries_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, base(feed='interval = "5"', alerts="max_length = 10"))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.path == path.resolve()
    assert str(caught.value) == (
        f'{path.resolve()}: {F}.interval: expected a duration like "5m", got "5"; '
        "alerts.max_length: must be at least 80, got 10"
    )


def test_unreadable_config_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, env={})
    assert caught.value.errors == ["file not found (give the right path with --config)"]

    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    assert caught.value.errors == ["cannot read the file: Is a directory"]

    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[[feeds]]\nname = "Viabilità"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config(latin1, env={})
    assert caught.value.errors == ["not UTF-8 text (byte 26)"]


# ---------------------------------------------------------------------------
# Durations, time windows, warnings, where the file is


@pytest.mark.parametrize(
    ("text", "delta", "canonical"),
    [
        ("30s", timedelta(seconds=30), "30s"),
        ("5m", timedelta(minutes=5), "5m"),
        ("2h", timedelta(hours=2), "2h"),
        ("7d", timedelta(days=7), "7d"),
        ("1h30m", timedelta(hours=1, minutes=30), "1h30m"),
        ("1h 30m", timedelta(hours=1, minutes=30), "1h30m"),
        (" 90s ", timedelta(seconds=90), "1m30s"),
        ("0s", timedelta(0), "0s"),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4), "1d2h3m4s"),
        ("3650d", timedelta(days=3650), "3650d"),
    ],
)
def test_parse_and_format_duration(text: str, delta: timedelta, canonical: str) -> None:
    assert parse_duration(text) == delta
    assert format_duration(delta) == canonical
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize("text", ["5 minuti", "5", "-1m", "", "1.5h", "5M", "m", "1w"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_duration(text)
    assert str(caught.value) == f'expected a duration like "5m", got "{text}"'


def test_format_duration_drops_fractions_of_a_second() -> None:
    assert format_duration(timedelta(seconds=61, milliseconds=500)) == "1m1s"


NIGHT = parse_time_window("22:00-07:00")
OFFICE = parse_time_window("9:00 - 17:30")


@pytest.mark.parametrize(
    ("window", "moment", "inside"),
    [
        (NIGHT, time(21, 59), False),
        (NIGHT, time(22, 0), True),
        (NIGHT, time(23, 59, 59), True),
        (NIGHT, time(0, 0), True),
        (NIGHT, time(6, 59), True),
        (NIGHT, time(7, 0), False),
        (NIGHT, time(12, 0), False),
        (OFFICE, time(8, 59), False),
        (OFFICE, time(9, 0), True),
        (OFFICE, time(17, 29), True),
        (OFFICE, time(17, 30), False),
        (OFFICE, time(23, 0), False),
    ],
)
def test_time_window_contains(window: TimeWindow, moment: time, inside: bool) -> None:
    assert window.contains(moment) is inside


def test_time_window_text() -> None:
    assert str(NIGHT) == "22:00-07:00"
    assert str(OFFICE) == "09:00-17:30"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"CHANNEL_BRIDGE_CONFIG": "custom/bridge.toml", "CONFIGURATION_DIRECTORY": "etc/channel-bridge"},
         Path("custom/bridge.toml")),
        ({"CONFIGURATION_DIRECTORY": "etc/channel-bridge:etc/other"}, Path("etc/channel-bridge/config.toml")),
        ({"CHANNEL_BRIDGE_CONFIG": "", "CONFIGURATION_DIRECTORY": "etc/channel-bridge"},
         Path("etc/channel-bridge/config.toml")),
        ({}, Path("config.toml")),
        ({"CHANNEL_BRIDGE_CONFIG": "", "CONFIGURATION_DIRECTORY": ""}, Path("config.toml")),
    ],
    ids=["env-var-first", "systemd-configuration-directory", "empty-env-var-ignored", "cwd", "all-empty"],
)
def test_default_config_path(env: dict[str, str], expected: Path) -> None:
    assert default_config_path(env) == expected


@pytest.mark.parametrize(
    ("interval", "warnings"),
    [
        ("10s", ['feeds[0] (id="notizie").interval: 10s is very short; municipal web servers are small, '
                 "prefer 5m or more except for emergencies"]),
        ("29s", ['feeds[0] (id="notizie").interval: 29s is very short; municipal web servers are small, '
                 "prefer 5m or more except for emergencies"]),
        ("30s", []),
        ("5m", []),
    ],
)
def test_config_warnings_for_short_intervals(tmp_path: Path, interval: str, warnings: list[str]) -> None:
    config = load_config(write(tmp_path, base(feed=f'interval = "{interval}"')), env={})
    assert config_warnings(config) == warnings


def many_feeds(count: int, backfill: int, *, console: bool = False) -> str:
    feeds = "".join(f'[[feeds]]\nid = "comune-{n}"\nurl = "https://www.comune{n}.example.it/feed/"\n'
                    for n in range(count))
    channel = ('[channels.whatsapp]\ntype = "console"\n' if console else
               '[channels.whatsapp]\ntype = "waha"\nurl = "http://127.0.0.1:3000"\n'
               'chat_id = "120363000000000000@newsletter"\napi_key = "env:WAHA_API_KEY"\n')
    return (f'[defaults]\nchannels = ["whatsapp"]\nbackfill = {backfill}\n[alerts]\nmin_gap = "2m"\n'
            f"{feeds}{channel}")


@pytest.mark.parametrize(
    ("feeds", "backfill", "warning"),
    [
        (500, 200, 'backfill: the first polls of 500 feeds may queue up to 100,000 posts (100,000 on "whatsapp"), '
                   "which at one post every 2m take 138d21h; keep backfill at a few items, or add feeds a few at a "
                   "time"),
        (100, 10, 'backfill: the first polls of 100 feeds may queue up to 1,000 posts (1,000 on "whatsapp"), '
                  "which at one post every 2m take 1d9h; keep backfill at a few items, or add feeds a few at a time"),
        (100, 9, None),
        (500, 0, None),
        (3, 200, None),
    ],
)
def test_check_warns_when_first_polls_could_queue_thousands_of_posts(
        tmp_path: Path, feeds: int, backfill: int, warning: str | None) -> None:
    config = load_config(write(tmp_path, many_feeds(feeds, backfill)), env={"WAHA_API_KEY": "k" * 16})
    assert config_warnings(config) == ([warning] if warning else [])


def test_the_backfill_warning_of_a_console_says_no_pace(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, many_feeds(50, 40, console=True)), env={})
    assert config_warnings(config) == [
        'backfill: the first polls of 50 feeds may queue up to 2,000 posts (2,000 on "whatsapp"); '
        "keep backfill at a few items, or add feeds a few at a time"]


# ---------------------------------------------------------------------------
# The file shipped with channel-bridge


def test_shipped_config_loads() -> None:
    shipped = REPO_ROOT / "config.toml"
    config = load_config(shipped, env={})
    assert config.path == shipped.resolve()
    assert config.bridge.state_dir == REPO_ROOT.resolve() / "state"
    assert config_warnings(config) == []
    assert config.feeds, "the shipped config must have a feed to show"
    for feed in config.feeds:
        assert feed.is_local
        assert Path(feed.url).is_file(), feed.url
        assert set(feed.channels) <= set(config.channels)
    assert {channel.type for channel in config.channels.values()} <= {"waha", "console"}
