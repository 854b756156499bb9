"""Fixtures shared by the whole suite: real servers on loopback (see tests/servers/)."""

pytest_plugins = [
    "servers.feeds",
    "servers.images",
    "servers.mastodon",
    "servers.pages",
    "servers.telegram",
    "servers.waha",
    "servers.webhook",
    "servers.whapi",
]
