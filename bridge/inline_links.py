"""Web addresses in alert text, found as WhatsApp and Telegram would make them links. Pure.

Both platforms turn more than `https://...` into a clickable link: a name starting with
"www.", and a bare domain name with a known top-level domain ("evil.example.com",
"bit.ly/abc"), with or without a path. An alert's only link must be the checked one
(`bridge.links`), so the alert text is searched for all three forms.

What is not an address, although it has dots: times and numbers ("ore 9.30", "1.500",
"n.85", "art. 3.2"), Italian abbreviations whose ending happens to be a country's domain
("c.so Italia", "Gent.ma", "Ill.mo", "sig.na"), file names ("modulo.pdf": no such
top-level domain), a word glued to the next sentence ("chiusa.Info": a domain is written
in one case). E-mail addresses are not web addresses: they stay, and their domain is not
taken for a bare name. A mail address opens the reader's own mail program, not a page, and
a comune's certified mail (PEC) usually lives on its provider's domain.

Top-level domains come from the Public Suffix List inside the `publicsuffixlist` package
(its ICANN section lists every delegated TLD), read from the installed package once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

__all__ = ["Address", "find_addresses", "is_top_level_domain"]


@dataclass(frozen=True, slots=True)
class Address:
    """One address in a text: `text[start:end]` as written, and `url`, the absolute URL a
    platform would open for it ("https://" before a bare name)."""

    start: int
    end: int
    written: str
    url: str


# A scheme URL ("https://...", "ftp://..."), a "www." name, or a bare host name; each then
# runs to the next space or character that cannot be in a link. Not after a letter, digit,
# "@", "." or "/" (the middle of a word, an e-mail address, another address).
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_REST = r"""(?::\d{1,5})?(?:[/?#][^\s<>"]*)?"""  # port and path
_ADDRESS_RE = re.compile(
    rf"""
    (?<![\w@./-])
    (?:
        (?P<scheme>[a-z][a-z0-9+.-]{{1,15}}://)[^\s<>"]+
      | www\d{{0,3}}\.{_LABEL}(?:\.{_LABEL})*{_REST}
      | (?P<ip>\d{{1,3}}(?:\.\d{{1,3}}){{3}})(?=[:/]){_REST}
      | (?P<host>(?:{_LABEL}\.)+(?P<tld>[^\W\d_]{{2,63}}))(?![\w@-])(?::\d{{1,5}})?(?P<path>[/?#][^\s<>"]*)?
    )
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Punctuation that ends a sentence or closes a bracket after an address, not part of it.
_TRAILING = ".,;:!?'\"’”»…"
_BRACKETS = {")": "(", "]": "[", "}": "{"}
# Italian abbreviations that look like a host name with a country's domain ("c.so" is
# "corso", "Gent.ma" is "gentilissima"), compared lower-cased without their final period.
_ABBREVIATIONS = frozenset(
    """
    c.so n.ro p.es gent.ma gent.mo gent.mi gent.me ill.mo ill.ma ill.mi egr.mo egr.ma sig.na
    sig.ra sig.re sig.ri all.to all.ti art.li ecc.mo ecc.ma preg.mo preg.ma dott.ri dott.sa
    prof.sa avv.to arch.to geom.ra rag.ra spett.le v.so d.ssa n.ri cost.it dott.ss q.re
    """.split()
)


# Country domains common on Italian pages, which a capitalised name may well carry ("Comune.it").
_COMMON_CC = frozenset({"it", "eu"})
# Top-level domains that are Italian articles, prepositions or conjunctions.
_ITALIAN_WORD_TLDS = frozenset({"il", "la", "in", "al", "ne", "se", "si", "so", "ci", "do", "es", "et", "ma"})


@lru_cache(maxsize=1)
def _top_level_domains() -> frozenset[str]:
    """Every top-level domain of the Public Suffix List's ICANN section, lower-cased."""
    data = resources.files("publicsuffixlist").joinpath("public_suffix_list.dat").read_text(encoding="utf-8")
    found = set()
    for line in data.splitlines():
        rule = line.strip()
        if rule.startswith("// ===BEGIN PRIVATE DOMAINS==="):
            break
        if rule and not rule.startswith("//") and "." not in rule:
            found.add(rule.lstrip("!*").lower())
    return frozenset(found)


def is_top_level_domain(label: str) -> bool:
    """True when `label` ("it", "com", "ly") is a delegated top-level domain."""
    return label.lower() in _top_level_domains()


def _trim(written: str) -> str:
    """Drop the punctuation that follows an address in a sentence, and a closing bracket
    that has no opening one inside the address ("(www.x.it)")."""
    while written:
        last = written[-1]
        if last in _TRAILING:
            written = written[:-1]
        elif last in _BRACKETS and written.count(last) > written.count(_BRACKETS[last]):
            written = written[:-1]
        else:
            break
    return written


def _is_bare_name(match: re.Match[str]) -> bool:
    """A bare host name the platforms would make a link, rather than an abbreviation, a file
    name or two sentences glued together."""
    host, tld = match.group("host"), match.group("tld")
    if not is_top_level_domain(tld):
        return False
    # "chiusa.Info", "multa.Il": a sentence glued to the next, not a domain, which is
    # written in one case (its first letter may be a capital: "Bit.ly").
    if not (tld.islower() or host.isupper()):
        return False
    labels = host.split(".")[:-1]
    # "C.R.EU.S.", "S.IN.TE.SI": a dotted acronym, letters or pairs between the dots.
    if len(labels) >= 2 and sum(len(label) for label in labels) <= 2 * len(labels):
        return False
    if host.lower() in _ABBREVIATIONS:
        return False
    if match.group("path") is None and len(labels) == 1:
        # "Q.re" (quartiere), "Dott.ss": a capitalised abbreviation with a country's domain;
        # "chiusa.il", "sede.la": two words glued by a missing space.
        if labels[0][:1].isupper() and not host.isupper() and len(tld) == 2 and tld.lower() not in _COMMON_CC:
            return False
        if tld.lower() in _ITALIAN_WORD_TLDS:
            return False
    return True


def find_addresses(text: str) -> list[Address]:
    """Return the web addresses in `text`, in order: scheme URLs, "www." names and bare host
    names with a known top-level domain, each with an optional port and path. Trailing
    sentence punctuation is not part of an address. E-mail addresses are not returned."""
    found: list[Address] = []
    for match in _ADDRESS_RE.finditer(text):
        if match.group("host") is not None and not _is_bare_name(match):
            continue
        if match.group("ip") is not None and any(int(part) > 255 for part in match.group("ip").split(".")):
            continue
        written = _trim(match.group(0))
        if not written or (match.group("scheme") and written == match.group("scheme")):
            continue
        url = written if match.group("scheme") else f"https://{written}"
        found.append(Address(match.start(), match.start() + len(written), written, url))
    return found
