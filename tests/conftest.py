"""Fixtures shared by the whole suite: real servers on loopback (see tests/servers/)."""

pytest_plugins = ["servers.feeds", "servers.waha"]
