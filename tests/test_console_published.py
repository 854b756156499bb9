"""The console's *Pubblicati* page and its CSV export over a real history: search by text,
feed, channel and days, newest first, in pages; only the months a search needs are read; the
export has the same filter, and no cell of it becomes a spreadsheet formula; feed text is
shown as text; neither route answers without a session."""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from console.harness import ServedConsole, delivery, served

from bridge.console import published
from bridge.console.published import HistoryQuery, QueryError, parse_query
from bridge.models import Post
from bridge.spreadsheet import csv_cell
from bridge.store import History, Store

ROME = ZoneInfo("Europe/Rome")
EXTRA = """
[[feeds]]
id = "eventi"
name = "Eventi in città"
url = "feed.xml"
channels = ["whatsapp"]
link_domains = ["comune.example.it"]
"""


def post(number: int, at: datetime, *, channel: str = "whatsapp", feed: str = "notizie", title: str = "",
         link: str = "https://www.comune.example.it/n/1") -> Post:
    return Post(delivery_id=f"d{number}", channel=channel, feed_id=feed, title=title or f"Avviso {number}",
                link=link, posted_at=at, remote_id=f"true_1203@newsletter_{number}", verified=None)


def record(store: Store, posts: list[Post]) -> None:
    """Record `posts` as the daemon does: a delivery moved from the outbox to the history."""
    for p in posts:
        d = dataclasses.replace(delivery(p.delivery_id, p.channel, p.title, link=p.link), feed_id=p.feed_id)
        store.record_posts([d], p.remote_id, p.posted_at)


# -- the search, pure ----------------------------------------------------------------------------


class Months:
    """A history in real monthly files (written as the daemon writes them), read as the
    console reads it (`Store.month_posts`), counting the months read."""

    def __init__(self, state_dir: Path, posts: list[Post]) -> None:
        self.history = History(state_dir, read_only=False)
        for p in posts:
            self.history.append([p])
        self.months = self.history.months()
        self.read: list[str] = []
        self.parsed = 0

    def __call__(self, month: str, keep: Callable[[bytes], bool] | None = None) -> list[Post]:
        self.read.append(month)
        found = sorted(self.history.read_month(month, keep), key=lambda p: p.posted_at)
        self.parsed += len(found)
        return found

    def ids(self, query: HistoryQuery) -> list[str]:
        return sorted(p.delivery_id for p in published.matching(query, self.months, self, ROME))


def test_a_search_reads_only_the_months_it_needs_and_stops_at_its_page(tmp_path: Path) -> None:
    start = datetime(2025, 1, 1, 9, tzinfo=UTC)
    history = Months(tmp_path, [post(n, start + timedelta(hours=12 * n)) for n in range(24 * 60)])  # 2 a day
    page = published.search(HistoryQuery(), history.months, history, ROME, page_size=50)
    assert [p.delivery_id for p in page.posts] == [f"d{n}" for n in range(24 * 60 - 1, 24 * 60 - 51, -1)]
    # December 2026 holds 38 posts: November's file is opened for the rest, and no other.
    assert page.has_next and history.read == ["2026-12", "2026-11"]
    history.read.clear()
    days = HistoryQuery(first_day=date(2025, 3, 1), last_day=date(2025, 3, 31))
    found = list(published.matching(days, history.months, history, ROME))
    # March in Rome starts on 28 February at 23:00 UTC: February's file is read too.
    assert history.read == ["2025-03", "2025-02"]
    assert all(datetime(2025, 3, 1, tzinfo=ROME) <= p.posted_at < datetime(2025, 4, 1, tzinfo=ROME) for p in found)
    assert len(found) == 62
    assert [p.posted_at for p in found] == sorted((p.posted_at for p in found), reverse=True)


def test_pages_follow_one_another_without_gap_or_double(tmp_path: Path) -> None:
    start = datetime(2026, 10, 30, tzinfo=UTC)
    history = Months(tmp_path, [post(n, start + timedelta(hours=n)) for n in range(130)])  # two months
    seen: list[str] = []
    for number in (1, 2, 3):
        page = published.search(HistoryQuery(page=number), history.months, history, ROME, page_size=50)
        seen += [p.delivery_id for p in page.posts]
        assert page.has_next is (number < 3) and page.first_number == 50 * (number - 1) + 1
    assert seen == [f"d{n}" for n in range(129, -1, -1)]
    beyond = published.search(HistoryQuery(page=4), history.months, history, ROME, page_size=50)
    assert beyond.posts == [] and not beyond.has_next


def test_text_feed_and_channel_filter_together(tmp_path: Path) -> None:
    at = datetime(2026, 11, 5, 8, tzinfo=UTC)
    history = Months(tmp_path, [
        post(1, at, title="Lavori in Via Roma", link="https://www.comune.example.it/lavori"),
        post(2, at, title="Via Roma: mercato", feed="eventi"),
        post(3, at, title="Lavori al cimitero", channel="telegram"),
        post(4, at, title="Chiusura scuole"),
    ])
    assert history.ids(HistoryQuery(text="via roma")) == ["d1", "d2"]  # every word, whatever the case
    assert history.ids(HistoryQuery(text="ROMA lavori")) == ["d1"]
    assert history.ids(HistoryQuery(text="/lavori")) == ["d1"]  # the link is searched too
    assert history.ids(HistoryQuery(text="newsletter_4")) == ["d4"]  # and the remote id
    assert history.ids(HistoryQuery(feed="eventi")) == ["d2"]
    assert history.ids(HistoryQuery(channel="telegram")) == ["d3"]
    assert history.ids(HistoryQuery(text="lavori", channel="whatsapp")) == ["d1"]
    assert history.ids(HistoryQuery(text="niente del genere")) == []


def test_words_match_whatever_the_case_or_spelling_of_the_file(tmp_path: Path) -> None:
    at = datetime(2026, 11, 5, 8, tzinfo=UTC)
    history = Months(tmp_path, [
        post(1, at, title="CITTÀ pulita"),
        post(2, at, title="Straße chiusa"),
        post(3, at, title='Il "Mercato" di Natale'),
        post(4, at, title="Niente a che vedere"),
    ])
    # A record written by another program, its accented letter as a JSON escape.
    with (tmp_path / "history-2026-11.jsonl").open("a", encoding="utf-8") as file:
        file.write('{"delivery_id": "d5", "channel": "whatsapp", "feed_id": "notizie", '
                   '"title": "Lavori in citt\\u00e0", "link": "https://www.comune.example.it/n/5", '
                   '"posted_at": "2026-11-05T08:00:00+00:00", "remote_id": null}\n')
    assert history.ids(HistoryQuery(text="città")) == ["d1", "d5"]
    assert history.ids(HistoryQuery(text="strasse")) == ["d2"]  # "ß" folds to "ss"
    assert history.ids(HistoryQuery(text='"mercato"')) == ["d3"]
    history.parsed = 0
    assert history.ids(HistoryQuery(text="pulita")) == ["d1"]
    # Only the plain line without the word is left unparsed: "ß", the quotes' and the accent's
    # escapes make the others worth a full look.
    assert history.parsed == 4


def test_days_are_the_offices_days_both_included(tmp_path: Path) -> None:
    history = Months(tmp_path, [post(1, datetime(2026, 11, 30, 22, 59, tzinfo=UTC)),  # 23:59, 30/11 in Rome
                                post(2, datetime(2026, 11, 30, 23, 0, tzinfo=UTC)),   # 00:00, 1/12 in Rome
                                post(3, datetime(2026, 12, 1, 22, 59, tzinfo=UTC))])
    query = HistoryQuery(first_day=date(2026, 12, 1), last_day=date(2026, 12, 1))
    assert [p.delivery_id for p in published.matching(query, history.months, history, ROME)] == ["d3", "d2"]


@pytest.mark.parametrize(("params", "message"), [
    ({"dal": "2026-13-01"}, "data «dal» non valida"),
    ({"al": "ieri"}, "data «al» non valida"),
    ({"dal": "2026-12-02", "al": "2026-12-01"}, "viene dopo"),
    ({"pagina": "0"}, "pagina non valida"),
    ({"pagina": "-3"}, "pagina non valida"),
    ({"pagina": "99999"}, "pagina non valida"),
])
def test_a_query_that_cannot_be_read_says_which_field(params: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(params)


def test_a_query_is_read_from_the_form() -> None:
    assert parse_query({"q": "  lavori ", "feed": "notizie", "canale": "telegram", "dal": "2026-12-01",
                        "pagina": "3"}) == HistoryQuery("lavori", "notizie", "telegram", date(2026, 12, 1), None, 3)
    assert parse_query({}) == HistoryQuery()


@pytest.mark.parametrize(("cell", "written"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+39 333", "'+39 333"),
    ("-1+1", "'-1+1"),
    ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("  =1+1", "'  =1+1"),
    ("Lavori = disagi", "Lavori = disagi"),
    ("Avviso", "Avviso"),
    ("", ""),
])
def test_no_cell_becomes_a_formula(cell: str, written: str) -> None:
    assert csv_cell(cell) == written


# -- the page and the export, served -------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Iterator[ServedConsole]:
    yield from served(tmp_path, extra=EXTRA)


def test_the_page_lists_posts_newest_first_with_their_remote_id(site: ServedConsole) -> None:
    at = datetime(2026, 12, 1, 9, 15, tzinfo=UTC)
    record(site.daemon.store, [post(n, at + timedelta(hours=n)) for n in range(60)])
    client = site.login()
    page = client.get("/pubblicati")
    assert page.status_code == 200 and "<h1>Pubblicati</h1>" in page.text
    text = page.text
    assert text.index("Avviso 59") < text.index("Avviso 58") < text.index("Avviso 10")
    assert "Avviso 9<" not in text  # the 51st newest is on the next page
    assert "true_1203@newsletter_59" in text
    assert 'href="/pubblicati?pagina=2"' in text
    second = client.get("/pubblicati", params={"pagina": "2"}).text
    assert "Avviso 9<" in second and "Avviso 0<" in second and "Avviso 10<" not in second
    assert "01/12/2026 10:15" in second  # Avviso 0, in Rome's time
    assert 'href="/pubblicati"' in second and "pagina=3" not in second


def test_the_page_searches_and_keeps_the_filters_in_its_links(site: ServedConsole) -> None:
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    record(site.daemon.store, [post(n, at + timedelta(minutes=n), title=f"Lavori {n}" if n % 2 else f"Mercato {n}")
                               for n in range(120)])
    text = site.login().get("/pubblicati", params={"q": "lavori", "canale": "whatsapp"}).text
    assert "Lavori 119" in text and "Mercato" not in text.split("<tbody>")[1]
    assert 'href="/pubblicati?q=lavori&amp;canale=whatsapp&amp;pagina=2"' in text
    assert 'href="/pubblicati.csv?q=lavori&amp;canale=whatsapp"' in text
    assert 'value="lavori"' in text and '<option value="whatsapp" selected>' in text


def test_a_wrong_date_is_said_on_the_page(site: ServedConsole) -> None:
    page = site.login().get("/pubblicati", params={"dal": "31/12/2026"})
    assert page.status_code == 400
    assert "Ricerca non valida: data «dal» non valida: &#39;31/12/2026&#39; (scrivere AAAA-MM-GG)." in page.text
    answer = site.clients[-1].get("/pubblicati.csv", params={"pagina": "x"})
    assert answer.status_code == 400 and answer.text.startswith("pagina non valida")


HOSTILE = [
    "<script>alert('x')</script> Chiusura scuole",
    '<img src=x onerror="alert(1)"> Avviso',
    "Bando \u202egnp.exe\u202c *non grassetto*",
]


def test_hostile_titles_and_links_are_shown_as_text(site: ServedConsole) -> None:
    at = datetime(2026, 12, 1, 9, tzinfo=UTC)
    record(site.daemon.store, [post(n, at + timedelta(minutes=n), title=title) for n, title in enumerate(HOSTILE)]
           + [post(9, at, title="Link ostile", link="javascript:alert(1)")])
    text = site.login().get("/pubblicati").text
    assert "<script>" not in text and "<img src=x" not in text and 'onerror="alert(1)"' not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; Chiusura scuole" in text
    assert 'href="javascript' not in text and "Link ostile" in text
    assert "\u202egnp.exe\u202c" in text and "<strong>" not in text  # no WhatsApp markup rendered here


def test_the_export_has_every_match_of_the_filter_and_no_formula(site: ServedConsole) -> None:
    at = datetime(2026, 10, 31, 12, tzinfo=UTC)
    posts = [post(n, at + timedelta(hours=6 * n), title=f"Lavori {n}") for n in range(130)]  # Oct-Dec
    posts += [post(500, at, title='=HYPERLINK("http://evil.example","clic")'),
              post(501, at, title='Virgolette "doppie"; e punto e virgola\nsu due righe', feed="eventi"),
              post(502, at, title="Altro", channel="telegram")]
    record(site.daemon.store, posts)
    client = site.login()
    answer = client.get("/pubblicati.csv", params={"canale": "whatsapp"})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="pubblicati-20261207.csv"'
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == published.CSV_HEADER
    body = rows[1:]
    assert len(body) == 132  # all pages, the telegram post left out
    by_id = {row[7]: row for row in body}
    assert by_id["d500"][3] == "'=HYPERLINK(\"http://evil.example\",\"clic\")"
    assert by_id["d501"][3] == 'Virgolette "doppie"; e punto e virgola\nsu due righe'
    assert by_id["d501"][2] == "Eventi in città"
    assert by_id["d129"][:6] == ["2026-12-02 19:00", "whatsapp", "Notizie dal Comune", "Lavori 129",
                                 "https://www.comune.example.it/n/1", "true_1203@newsletter_129"]
    times = [row[0] for row in body]
    assert times == sorted(times, reverse=True)
    only = client.get("/pubblicati.csv", params={"q": "lavori 12", "dal": "2026-12-01"})
    found = [row[3] for row in csv.reader(io.StringIO(only.content.decode("utf-8-sig")), delimiter=";")][1:]
    # From 1 December in Rome (n = 122 is posted at 01:00 there, n = 121 the evening before).
    assert found == [f"Lavori {n}" for n in range(129, 121, -1)]


def test_neither_route_answers_without_a_session(site: ServedConsole) -> None:
    record(site.daemon.store, [post(1, datetime(2026, 12, 1, tzinfo=UTC), title="Segreto d'ufficio")])
    with site.client() as client:
        for path in ("/pubblicati", "/pubblicati.csv", "/pubblicati?q=segreto", "/pubblicati/riepilogo"):
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/login"
            assert "Segreto" not in answer.text


# -- the monthly summary -------------------------------------------------------------------------


def test_a_month_is_summed_per_week_channel_and_feed_in_the_offices_calendar(tmp_path: Path) -> None:
    history = Months(tmp_path, [
        post(1, datetime(2026, 11, 30, 23, 30, tzinfo=UTC)),  # 1 December, 00:30 in Rome: in
        post(2, datetime(2026, 11, 30, 22, 30, tzinfo=UTC)),  # 30 November in Rome: out
        post(3, datetime(2026, 12, 6, 20, tzinfo=UTC), channel="telegram"),  # Sunday 6: first week
        post(4, datetime(2026, 12, 7, 9, tzinfo=UTC), feed="eventi"),  # Monday 7: second week
        post(5, datetime(2026, 12, 31, 22, 59, tzinfo=UTC)),  # 31 December, 23:59 in Rome: last week
        post(6, datetime(2026, 12, 31, 23, 0, tzinfo=UTC)),  # 1 January in Rome: out
    ])
    summary = published.month_summary(2026, 12, history.months, history, ROME)
    assert summary.name == "dicembre 2026" and summary.total == 4
    # 1 December 2026 is a Tuesday: the first week is cut to 1-6, the last to 28-31.
    assert summary.weeks == [(date(2026, 12, 1), date(2026, 12, 6), 2), (date(2026, 12, 7), date(2026, 12, 13), 1),
                             (date(2026, 12, 14), date(2026, 12, 20), 0), (date(2026, 12, 21), date(2026, 12, 27), 0),
                             (date(2026, 12, 28), date(2026, 12, 31), 1)]
    assert summary.by_channel == [("whatsapp", 3), ("telegram", 1)]
    assert summary.by_feed == [("notizie", 3), ("eventi", 1)]
    assert history.read == ["2026-12", "2026-11"]  # January's file is not opened


def test_the_chart_draws_bars_to_scale_and_escapes_its_labels() -> None:
    from bridge.console.chart import HEIGHT, MARGIN_BOTTOM, MARGIN_TOP, bar_chart

    svg = str(bar_chart([("1–6", 10), ("<b>7</b>", 5), ("14–20", 0)], title='Per settimana "<x>"'))
    assert svg.startswith("<svg ") and svg.endswith("</svg>")
    heights = [float(part.split('"')[0]) for part in svg.split(' height="')[1:]]
    plot = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM
    assert heights == [plot, plot / 2, 0.0]
    assert "<b>" not in svg and "&lt;b&gt;7&lt;/b&gt;" in svg
    assert "Per settimana &#34;&lt;x&gt;&#34;" in svg
    assert "style=" not in svg  # the page's CSP allows no inline style
    empty = str(bar_chart([], title="vuoto"))
    assert "<rect" not in empty


def test_the_summary_page_draws_the_weeks_and_refuses_a_bad_month(site: ServedConsole) -> None:
    record(site.daemon.store, [post(n, datetime(2026, 12, 1 + n, 9, tzinfo=UTC), feed="eventi" if n == 0 else "notizie")
                               for n in range(7)])  # 1 to 7 December
    client = site.login()
    page = client.get("/pubblicati/riepilogo")  # this month: December 2026
    assert page.status_code == 200
    text = page.text
    assert "<h2>Dicembre 2026: 7 pubblicazioni</h2>" in text
    weeks = text.split('id="settimane"')[1].split("</figure>")[0]
    assert weeks.count('<rect class="bar"') == 5
    assert "<title>1–6: 6</title>" in weeks and "<title>7–13: 1</title>" in weeks
    assert "<td>Notizie dal Comune</td><td>6</td>" in text and "<td>Eventi in città</td><td>1</td>" in text
    assert 'href="/pubblicati/riepilogo?mese=2026-11"' in text and "mese=2027-01" not in text  # no future
    november = client.get("/pubblicati/riepilogo", params={"mese": "2026-11"}).text
    assert "Novembre 2026: 0 pubblicazioni" in november and "mese=2026-12" in november
    bad = client.get("/pubblicati/riepilogo", params={"mese": "dicembre"})
    assert bad.status_code == 400 and "mese non valido: &#39;dicembre&#39; (scrivere AAAA-MM)" in bad.text
