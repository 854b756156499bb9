"""Why an item was held back before it reached the outbox, told for the office, and what it
can do about it. Pure.

The daemon holds an item that must not be posted as it is (`bridge.verdict.hold_reason`):
its link is missing or points off the comune's site (`bridge.links.link_problem`), its title
is little more than an outside address (`bridge.summary.screen_title`), or it has nothing to
say (`bridge.verdict.NOTHING_TO_SAY`). It records each held item in the feed's state
(`FeedState.held`, with the guard's reason in English, as the log says it). `explain` turns
that reason into a kind (HOLD_*), a sentence in Italian for the console and what to do, in
Italian and in English (`channel-bridge queue`). The kinds are told apart by the words of the
reasons those functions give; tests/test_holds.py makes each of them and checks that none
falls to HOLD_OTHER, so a reworded reason cannot go unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from bridge.links import allowed_domains, registrable_domain
from bridge.verdict import NO_LINK, NOTHING_TO_SAY

HOLD_OFF_SITE = "off_site"  # the link is on another domain
HOLD_PORT = "port"  # the link is on a port other than the default
HOLD_HIDDEN_BREAK = "hidden_break"  # a space or an invisible character inside the link
HOLD_USER_INFO = "user_info"  # "https://site@other/": a disguise
HOLD_NOT_WEB = "not_web"  # not an absolute http(s) address
HOLD_NO_DOMAIN = "no_domain"  # a local feed file without link_domains
HOLD_NO_LINK = "no_link"
HOLD_TITLE_ADDRESS = "title_address"  # the title is little more than an outside address
HOLD_NOTHING_TO_SAY = "nothing_to_say"
HOLD_OTHER = "other"

_ASK_EDITORS = "chiedere alla redazione del sito di correggere la notizia"


@dataclass(frozen=True, slots=True)
class Hold:
    """A held item explained: `kind` (HOLD_*), `reason` in Italian, what to do in Italian
    (`remedy`) and in English (`remedy_en`)."""

    kind: str
    reason: str
    remedy: str
    remedy_en: str


def explain(reason: str, *, link: str | None, feed_id: str, feed_url: str | None,
            link_domains: tuple[str, ...] = ()) -> Hold:
    """Explain the hold `reason` (the guard's English words) of an item whose link is `link`,
    of the feed `feed_id` at `feed_url` (None when the feed is no longer configured) with its
    `link_domains`."""
    if reason.startswith("the link points to port"):
        return Hold(HOLD_PORT, "il link usa una porta diversa da quella normale del sito: è un altro servizio",
                    f"{_ASK_EDITORS}: il link deve essere l'indirizzo normale della pagina, senza «:porta»",
                    "ask the site's editors to link the page's usual address, without a port")
    if reason.startswith("the link points to "):
        host = _host(link)
        domain = registrable_domain(host) if host else None
        allowed = ", ".join(sorted(allowed_domains(feed_url, link_domains))) if feed_url else ""
        where = f"il link porta a {host or 'un altro sito'}, fuori dai domini del feed" + (f" ({allowed})" if allowed
                                                                                         else "")
        if domain:
            return Hold(HOLD_OFF_SITE, where,
                        f"se «{domain}» è davvero un sito del Comune, chiedere al CED di aggiungerlo a link_domains "
                        f"del feed «{feed_id}» in config.toml (le notizie nuove passeranno); altrimenti la notizia "
                        "manda i cittadini fuori dal sito e non va pubblicata",
                        f"if {domain} really is the comune's, add it to link_domains of feed \"{feed_id}\" in "
                        "config.toml (new items will pass); otherwise the item sends citizens off the site")
        return Hold(HOLD_OFF_SITE, where, _ASK_EDITORS, "ask the site's editors to fix the item's link")
    if reason.startswith("the link has a space or an invisible character"):
        return Hold(HOLD_HIDDEN_BREAK,
                    "il link contiene uno spazio o un carattere invisibile: potrebbe mostrare un altro indirizzo",
                    f"{_ASK_EDITORS}: uno spazio in un link va scritto %20",
                    "ask the site's editors to write the space in the link as %20")
    if reason.startswith("the link carries user info"):
        return Hold(HOLD_USER_INFO,
                    "il link ha un nome prima del dominio (https://sito@altro/): un travestimento noto",
                    f"{_ASK_EDITORS}: il link deve portare alla pagina del Comune",
                    "ask the site's editors to link the comune's page itself")
    if reason.startswith("the link is not an absolute http(s) address"):
        return Hold(HOLD_NOT_WEB, "il link non è un indirizzo web completo (http o https)",
                    f"{_ASK_EDITORS}: serve il link completo alla pagina", "ask the site's editors for a full link")
    if reason.startswith("the feed has no web domain"):
        return Hold(HOLD_NO_DOMAIN, "il feed non ha un dominio web suo e link_domains non è configurato",
                    f"chiedere al CED di indicare in config.toml i domini del Comune (link_domains del feed "
                    f"«{feed_id}»)",
                    f"list the comune's domains in link_domains of feed \"{feed_id}\" in config.toml")
    if reason.startswith("the title is little more than an address"):
        return Hold(HOLD_TITLE_ADDRESS, "il titolo è poco più di un indirizzo di un altro sito",
                    f"se quel sito è del Comune, chiedere al CED di aggiungerlo a link_domains del feed «{feed_id}»; "
                    "altrimenti chiedere alla redazione di dare un titolo alla notizia",
                    f"if that site is the comune's, add it to link_domains of feed \"{feed_id}\"; otherwise ask "
                    "the site's editors for a title")
    if reason == NOTHING_TO_SAY:
        return Hold(HOLD_NOTHING_TO_SAY, "la notizia non ha titolo né testo: l'avviso sarebbe solo il link",
                    f"{_ASK_EDITORS}: serve almeno un titolo", "ask the site's editors to give the item a title")
    if reason == NO_LINK or reason.startswith("the item has no link"):
        return Hold(HOLD_NO_LINK, "la notizia non ha un link a una pagina del sito del Comune",
                    f"{_ASK_EDITORS}: ogni notizia deve avere il link alla sua pagina",
                    "ask the site's editors to give the item a link to its page")
    return Hold(HOLD_OTHER, f"trattenuto dal controllo dei link: {reason}", _ASK_EDITORS,
                "check the item on the site")


def _host(link: str | None) -> str | None:
    try:
        host = urlsplit(link.strip()).hostname if link else None
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None
