"""Fixtures shared by the whole suite: real servers on loopback (see tests/servers/), small and
read-only file systems (tests/filesystems.py)."""

pytest_plugins = [
    "filesystems",
    "servers.feeds",
    "servers.images",
    "servers.mastodon",
    "servers.pages",
    "servers.telegram",
    "servers.waha",
    "servers.webhook",
    "servers.whapi",
]
