"""The console's *Audit* page: the audit trail (`bridge.audit`, through the store's reader),
newest first, PAGE_SIZE entries a page, each as the office reads it: when, who, from where,
what was done to which alert, its state before and after, the text an editor gave, the reason.
Pure over the config, an open `Store` and the page's query."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.console.editor import PAST_IT
from bridge.deletion import DELETE, DELETED
from bridge.withdrawn import WITHDRAWN

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from bridge.audit import AuditEntry
    from bridge.config import Config
    from bridge.store import Store

PAGE_SIZE = 50
WHERE_IT = {"console": "console", "cli": "riga di comando", "daemon": "servizio"}
STATE_IT = {"pending": "in coda", "awaiting": "da approvare", "stopped": "fermato", "failed": "non inviato",
            "posted": "pubblicato"}
# What an entry with no "after" left: an alert gone from the queue, except for the entries
# about a post (it stays posted until the platform deleted it).
AFTER_NONE_IT = {WITHDRAWN: "pubblicato", DELETE: "pubblicato", DELETED: "cancellato dal canale"}


class PageError(ValueError):
    """A page number that is not one."""


def page_number(query: dict[str, str]) -> int:
    """The page asked for by `pagina` (1 when absent); raise PageError for anything else."""
    text = query.get("pagina", "").strip() or "1"
    if not text.isdigit() or int(text) < 1 or len(text) > 9:
        raise PageError(f"pagina non valida: «{text[:20]}» (un numero da 1 in su)")
    return int(text)


def audit(config: Config, store: Store, query: dict[str, str]) -> dict[str, Any]:
    """The page's values: `rows` of page `pagina` of the trail, newest first; the page, how many
    pages and entries (`page_no`, `pages`, `count`); `error` for a page number that is not one
    (the rows of page 1 then). A page past the last shows the last."""
    tz = config.bridge.timezone
    names = {feed.id: feed.name for feed in config.feeds}
    entries = store.audit_entries()
    pages = max(1, -(-len(entries) // PAGE_SIZE))
    error = None
    try:
        page = min(page_number(query), pages)
    except PageError as exc:
        error, page = str(exc), 1
    end = len(entries) - (page - 1) * PAGE_SIZE
    shown = reversed(entries[max(0, end - PAGE_SIZE):max(0, end)])
    return {"rows": [_row(entry, names, tz) for entry in shown], "page_no": page, "pages": pages,
            "count": len(entries), "error": error}


def _row(entry: AuditEntry, names: dict[str, str], tz: ZoneInfo) -> dict[str, Any]:
    before, after = entry.before, entry.after
    edited = after is not None and "summary" in before and after.get("summary") != before.get("summary")
    return {
        "at": f"{entry.at.astimezone(tz):%d/%m/%Y %H:%M:%S}",
        "who": entry.who,
        "where": WHERE_IT.get(entry.where, entry.where),
        "action": PAST_IT.get(entry.action, entry.action) + (" con il testo modificato" if edited else ""),
        "alert_id": entry.alert_id,
        "title": entry.title,
        "channel": entry.channel,
        "feed": names.get(entry.feed_id, entry.feed_id),
        "before": STATE_IT.get(str(before.get("state")), str(before.get("state", "—"))),
        "after": (STATE_IT.get(str(after.get("state")), str(after.get("state"))) if after is not None
                  else AFTER_NONE_IT.get(entry.action, "tolto dalla coda")),
        "text_before": str(before.get("summary", "")) if edited else "",
        "text_after": str(after.get("summary", "")) if edited and after is not None else "",
        "reason": entry.reason,
    }
