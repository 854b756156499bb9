"""The staff console: read-only web pages, in Italian, for the comune's communication office.

Served by the daemon on its own event loop (`bridge.console.server`), over the daemon's
in-memory `Store`: the console never opens the state files. The pages are built by pure
functions (`bridge.console.views`) from the same reports the command line prints; the
handlers only check the session and render a template (Jinja2, autoescape on).
"""
