"""Web addresses in alert text (bridge.inline_links) and what the summary does with those off the
feed's domains (bridge.summary): table-driven, exact outputs."""

from __future__ import annotations

import pytest

from bridge.inline_links import find_addresses
from bridge.item import Item
from bridge.summary import AddressOnlyTitleError, address_problem, build_alert, screen_title

FEED_URL = "https://www.comune.esempio.it/feed/"
DOMAINS = ("comune.esempio.it",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # What WhatsApp and Telegram make links of.
        pytest.param("Vedi https://evil.example/bando?x=1.", ["https://evil.example/bando?x=1"], id="scheme-url"),
        pytest.param("HTTPS://EVIL.COM/X", ["HTTPS://EVIL.COM/X"], id="scheme-in-capitals"),
        pytest.param("Link:https://evil.com", ["https://evil.com"], id="scheme-after-a-colon"),
        pytest.param("ftp://evil.com/file", ["ftp://evil.com/file"], id="other-scheme"),
        pytest.param("sul sito www.viacqua.it.", ["www.viacqua.it"], id="www-name-at-a-sentence-end"),
        pytest.param("(www.x.it) e [http://y.it/a_(b)]", ["www.x.it", "http://y.it/a_(b)"], id="in-brackets"),
        pytest.param("Iscrizione: bit.ly/LavoroDisabilità", ["bit.ly/LavoroDisabilità"], id="bare-name-with-path"),
        pytest.param("sul portale alberinpianura.it. Ritiro", ["alberinpianura.it"], id="bare-name"),
        pytest.param("su buonoscuola.regione.veneto.it, entro", ["buonoscuola.regione.veneto.it"], id="bare-subdomain"),
        pytest.param("consultare e-distribuzione.it oppure", ["e-distribuzione.it"], id="bare-name-with-hyphen"),
        pytest.param("t.me/canale e x.com", ["t.me/canale", "x.com"], id="one-letter-names"),
        pytest.param("Evil.com e Bit.ly/abc e Comunefalso.it", ["Evil.com", "Bit.ly/abc", "Comunefalso.it"],
                     id="capitalised-at-a-sentence-start"),
        pytest.param("città.it", ["città.it"], id="accented-name"),
        pytest.param("evil.io, evil.me, evil.co", ["evil.io", "evil.me", "evil.co"], id="popular-country-domains"),
        pytest.param("192.168.1.1/admin e 10.0.0.1:8080", ["192.168.1.1/admin", "10.0.0.1:8080"], id="ip-with-path"),
        pytest.param("evil.example.com:8443/x", ["evil.example.com:8443/x"], id="port"),
        # What has dots and is not an address.
        pytest.param("dalle ore 9.30 alle 12.30", [], id="times"),
        pytest.param("ai sensi dell'art. 3.2 e art.3.2", [], id="article-numbers"),
        pytest.param("delibera n.85 del 2026, D.Lgs. 50/2016, d.lgs.50/2016", [], id="legal-references"),
        pytest.param("1.500,00 euro, 3.14 e 1.2.3.4", [], id="numbers"),
        pytest.param("scrivere a info@comune.esempio.it o a nome.cognome@pec.it", [], id="e-mail-addresses"),
        pytest.param("p.zza Roma, c.so Italia, Gent.ma Sig.na, Ill.mo, Q.re Cristallo", [], id="abbreviations"),
        pytest.param("S.P. 51, S.p.A., a.s. 2026/2027, P.IVA", [], id="dotted-abbreviations"),
        pytest.param("Il C.R.EU.S. e lo studio S.IN.TE.SI srl, progetto R.A.D.I.CARE", [], id="dotted-acronyms"),
        pytest.param("modulo.pdf, foto.jpg, tabella.xlsx", [], id="file-names"),
        pytest.param("la sede.Info: 0444 e la strada chiusa.il comune", [], id="sentences-glued"),
        pytest.param("(ex art 71 co 2 cost.it.)", [], id="costituzione"),
        pytest.param("https:// e www.", [], id="nothing-after-the-prefix"),
    ],
)
def test_find_addresses(text: str, expected: list[str]) -> None:
    found = find_addresses(text)
    assert [a.written for a in found] == expected
    assert all(text[a.start : a.end] == a.written for a in found)


def test_a_bare_name_opens_as_https() -> None:
    assert [a.url for a in find_addresses("bit.ly/x e www.y.it e http://z.it")] == [
        "https://bit.ly/x", "https://www.y.it", "http://z.it"]


@pytest.mark.parametrize(
    ("title", "expected", "held"),
    [
        pytest.param("Bando contributi: domande su bit.ly/xyz", "Bando contributi: domande", False, id="tail"),
        pytest.param("Iscrizioni su evil.com entro il 5 maggio", "Iscrizioni entro il 5 maggio", False, id="middle"),
        pytest.param("Festa della Repubblica (info su www.evil.com)", "Festa della Repubblica (info)", False,
                     id="in-brackets"),
        pytest.param("Chiusura via Roma - https://evil.example/x", "Chiusura via Roma", False, id="after-a-dash"),
        pytest.param("Nuovo sito www.comune.esempio.it online", "Nuovo sito www.comune.esempio.it online", False,
                     id="on-the-feeds-domain-stays"),
        pytest.param("Tari: https://servizi.comune.esempio.it/tari", "Tari: https://servizi.comune.esempio.it/tari",
                     False, id="subdomain-stays"),
        pytest.param("Ore 9.30, art. 3.2, n.85: scrivere a urp@pec.it",
                     "Ore 9.30, art. 3.2, n.85: scrivere a urp@pec.it", False, id="no-address"),
        pytest.param("www.evil.com", "", True, id="only-an-address"),
        pytest.param("Iscriviti su www.evil.com", "Iscriviti", True, id="one-word-left"),
        pytest.param("https://www.comune.esempio.it.evil.example/", "", True, id="look-alike"),
        pytest.param("http://127.0.0.1:8080/admin", "", True, id="loopback"),
    ],
)
def test_screen_title(title: str, expected: str, held: bool) -> None:
    screen = screen_title(title, feed_url=FEED_URL, link_domains=DOMAINS)
    assert screen.text == expected
    assert (screen.problem is not None) == held
    if held:
        assert screen.problem is not None and "outside the feed's domains" in screen.problem


def _item(title: str, text: str = "") -> Item:
    return Item(feed_id="notizie", title=title, link="https://www.comune.esempio.it/notizie/1", guid="g1", text=text)


def test_build_alert_removes_an_outside_address_from_the_title() -> None:
    alert = build_alert(_item("Contributi alle famiglie: domande su bit.ly/evil-form",
                              "Le domande si presentano entro il 30 giugno 2026."),
                        feed_name="Notizie", feed_url=FEED_URL, link_domains=DOMAINS)
    assert alert.title == "Contributi alle famiglie: domande"
    assert alert.summary == "Le domande si presentano entro il 30 giugno 2026."


def test_build_alert_refuses_a_title_that_is_only_an_outside_address() -> None:
    item = _item("www.evil.example.com/premio", "Hai vinto un premio, ritiralo subito sul sito indicato.")
    assert address_problem(item, feed_url=FEED_URL, link_domains=DOMAINS) is not None
    with pytest.raises(AddressOnlyTitleError):
        build_alert(item, feed_name="Notizie", feed_url=FEED_URL, link_domains=DOMAINS)


@pytest.mark.parametrize(
    ("text", "summary"),
    [
        pytest.param("Prenotazioni sul sito tcvi.it. Gli eventi sono gratuiti per tutti.", "", id="bare-name-first"),
        pytest.param("Gli eventi sono gratuiti per tutti. Prenotazioni sul sito tcvi.it.",
                     "Gli eventi sono gratuiti per tutti.", id="bare-name-second"),
        pytest.param("Iscrizioni su bit.ly/LavoroDisabilità entro venerdì.", "", id="shortener"),
        pytest.param("Le istruzioni sono su www.comune.esempio.it/tari per tutti i contribuenti.",
                     "Le istruzioni sono su www.comune.esempio.it/tari per tutti i contribuenti.",
                     id="on-the-feeds-domain-is-used"),
        pytest.param("Per informazioni scrivere a tributi@comune.esempio.it o a tributi@pec.it entro venerdì.",
                     "Per informazioni scrivere a tributi@comune.esempio.it o a tributi@pec.it entro venerdì.",
                     id="e-mail-addresses-are-used"),
    ],
)
def test_summary_units_with_an_outside_address_are_not_used(text: str, summary: str) -> None:
    alert = build_alert(_item("Eventi estivi in biblioteca", text), feed_name="Notizie", feed_url=FEED_URL,
                        link_domains=DOMAINS)
    assert alert.summary == summary


def test_without_the_feeds_domains_every_address_is_outside() -> None:
    alert = build_alert(_item("Nuovo sito www.comune.esempio.it online",
                              "Le istruzioni sono su www.comune.esempio.it/tari per tutti i contribuenti."),
                        feed_name="Notizie")
    assert alert.title == "Nuovo sito online"
    assert alert.summary == ""
