"""The console's *Componi* page: an alert an editor writes, read from the page's form, shown
as each chosen channel will show it, then sent.

Nothing here decides: the decision is `bridge.compose.decide`'s (its refusals' Italian line is
what the page shows), the preview is each channel's own message (`views.phone_preview`,
through `outgoing_for`), and the console sends through the daemon's `compose` (`Bridge.compose`,
the one the control socket calls too). Pure over the config and a moment.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bridge.approval import ActionRefused
from bridge.compose import MAX_TEXT, MAX_TITLE, Composed, Composition, decide, posting_channels
from bridge.console.views import PhonePreview, phone_preview

if TYPE_CHECKING:
    from bridge.config import Config

MAX_URL = 2000  # characters of a link or an image address read from the form


@dataclass(frozen=True, slots=True)
class Form:
    """What the editor typed (kept as typed, to show it again), and the compose id of the page."""

    compose_id: str
    title: str = ""
    text: str = ""
    link: str = ""
    image: str = ""
    urgent: bool = False
    channels: tuple[str, ...] = ()

    def composition(self) -> Composition:
        return Composition(self.compose_id, title=self.title, text=self.text, link=self.link,
                           image_url=self.image or None, urgent=self.urgent, channels=self.channels)

    @property
    def seen(self) -> str:
        """A digest of what is previewed: the form sends only what its editor saw."""
        fields = "\n".join([self.title, self.text, self.link, self.image, str(self.urgent), *self.channels])
        return hashlib.sha256(fields.encode()).hexdigest()[:32]


def blank(config: Config) -> Form:
    """An empty form, with every channel the comune posts to chosen and a new compose id."""
    return Form(uuid.uuid4().hex, channels=posting_channels(config))


def offered_channels(config: Config) -> list[str]:
    """The channel boxes of the form: every channel but the ops channel (unless a feed posts there)."""
    posting = posting_channels(config)
    return [name for name in config.channels if name != config.ops.channel or name in posting]


def read_form(fields: Mapping[str, str], channels: Sequence[str]) -> Form:
    """The form as posted (`channels`: the chosen channel boxes), bounded."""
    ident = fields.get("id", "").strip()[:64] or uuid.uuid4().hex
    return Form(ident, title=fields.get("titolo", "")[:MAX_TITLE + 1], text=fields.get("testo", "")[:MAX_TEXT + 1],
                link=fields.get("link", "").strip()[:MAX_URL], image=fields.get("immagine", "").strip()[:MAX_URL],
                urgent=fields.get("urgente") == "si", channels=tuple(dict.fromkeys(c[:80] for c in channels)))


@dataclass(frozen=True, slots=True)
class Preview:
    """The form, and what it would send (`previews`, one per channel), or `error` (Italian)."""

    form: Form
    previews: tuple[PhonePreview, ...]
    error: str | None


def preview(config: Config, form: Form, *, now: datetime, who: str) -> Preview:
    """What sending `form` would make at `now`, as each channel shows it; unmade."""
    try:
        composed = decide(form.composition(), config, now=now, who=who)
    except ActionRefused as refusal:
        return Preview(form, (), refusal.it or str(refusal))
    return Preview(form, tuple(phone_preview(config.channels[d.channel], d.alert) for d in composed.deliveries), None)


def done_notice(composed: Composed) -> str:
    """The line In coda shows once it is queued."""
    first = composed.deliveries[0]
    channels = ", ".join(d.channel for d in composed.deliveries)
    when = "parte subito" if first.urgent else "parte al suo turno (rispettando le ore di silenzio)"
    return f"Avviso «{first.alert.title[:80]}» messo in coda per {channels}: {when}."
