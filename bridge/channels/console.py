"""The `console` channel: prints each rendered alert, for the default config and `preview`."""

from __future__ import annotations

import sys
from typing import TextIO

from bridge import render
from bridge.channels.base import ChannelDownError, DeleteUnsupported, EditUnsupported, Outgoing, Posted
from bridge.config import ChannelConfig
from bridge.item import Alert
from bridge.template import channel_template


def outgoing(config: ChannelConfig, alert: Alert, *, plain: bool = False) -> Outgoing:
    """The block a console channel prints for `alert`; pure: `render.console` (a header line,
    then the plain text laid out by the channel's template). `plain` changes nothing."""
    text = render.console(alert, channel_template(config.template, config.timezone)).rstrip("\n")
    return Outgoing(text, "plain", len(text), None)


class ConsoleChannel:
    """Writes `render.console(alert)` (its header in the bridge's time zone) and a blank line
    to `out` (standard output by default).

    Standard output is looked up at each send, not at construction, so a redirected or
    replaced `sys.stdout` (pytest's capture, a reopened stream) is honoured.
    """

    guarantee = "at-least-once"

    def __init__(self, config: ChannelConfig, *, out: TextIO | None = None) -> None:
        self.name = config.name
        self._out = out
        self._config = config

    async def prepare(self, delivery_id: str) -> str | None:
        """Return None: a console needs no token."""
        return None

    async def send(
        self, alert: Alert, *, delivery_id: str, token: str | None = None, plain: bool = False
    ) -> Posted:
        """Print the alert and flush; return `Posted(remote_id=None)`. The console form is
        plain text already, so `plain` changes nothing.

        Raise `ChannelDownError` when the stream cannot be written (closed pipe, full disk):
        every later alert would fail the same way.
        """
        out = self._out if self._out is not None else sys.stdout
        text = outgoing(self._config, alert).text
        try:
            out.write(text + "\n\n")
            out.flush()
        except (OSError, ValueError) as exc:  # ValueError: write to a closed file
            raise ChannelDownError(
                f"{self.name}: cannot write to the console: {exc}",
                hint="standard output is closed or not writable",
            ) from exc
        return Posted(remote_id=None)

    async def recover(self, alert: Alert, *, delivery_id: str, token: str | None) -> Posted | None:
        """Return None: a terminal cannot be read back; printing again is harmless."""
        return None

    async def edit(self, alert: Alert, *, remote_id: str, plain: bool = False) -> Posted:
        """Raise `EditUnsupported`: what was printed stays printed."""
        raise EditUnsupported(f"{self.name}: the console cannot edit what it printed",
                              hint='a correction goes out as a "Rettifica" follow-up')

    async def delete(self, remote_id: str) -> bool:
        """Raise `DeleteUnsupported`: what was printed stays printed."""
        raise DeleteUnsupported(f"{self.name}: cannot delete on this platform: the console cannot take back "
                                "what it printed")

    async def probe(self) -> str:
        """Return "console": standard output needs no check."""
        return "console"

    async def aclose(self) -> None:
        """Do nothing: the stream belongs to the caller."""
