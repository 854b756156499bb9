"""bridge.text: HTML to text, titles, boilerplate. Table-driven, exact outputs."""

from __future__ import annotations

import pytest

from bridge.text import (
    clean_title,
    drop_formulas,
    html_to_text,
    repair_references,
    repair_surrogates,
    restore_case,
    strip_boilerplate,
)


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("Testo semplice  senza tag", "Testo semplice senza tag", id="plain-text"),
        pytest.param(
            "Sagra dell&#8217;Assunta &amp; Pro&nbsp;Loco",
            "Sagra dell’Assunta & Pro Loco",
            id="plain-text-entities",
        ),
        pytest.param(
            "<p>Primo paragrafo.</p><p>Secondo paragrafo.</p>",
            "Primo paragrafo.\n\nSecondo paragrafo.",
            id="paragraphs",
        ),
        pytest.param(
            "<p>Con nota delle ore 13.00 la Regione &#8211; Centro Funzionale ha diramato."
            "<br />\n<p>In allegato l&#8217;avviso <a href='/x'>della Regione</a>.</p>",
            "Con nota delle ore 13.00 la Regione – Centro Funzionale ha diramato.\n\n"
            "In allegato l’avviso della Regione.",
            id="wordpress-content",
        ),
        pytest.param("Riga uno<br>Riga due", "Riga uno\nRiga due", id="br-line-break"),
        pytest.param(
            "<ul><li>Lunedì 9-12</li><li>Martedì 15-18</li></ul>",
            "Lunedì 9-12\n\nMartedì 15-18",
            id="list-items",
        ),
        pytest.param(
            "<h2>Titolo</h2><div>Corpo</div><table><tr><td>a</td><td>b</td></tr></table>",
            "Titolo\n\nCorpo\n\na\n\nb",
            id="headings-divs-cells",
        ),
        pytest.param(
            "<script>var x = 1;</script><style>p{}</style><noscript>JS</noscript><p>Testo</p>",
            "Testo",
            id="script-style-noscript-dropped",
        ),
        pytest.param("<!-- nota --><p>Testo</p>", "Testo", id="comment-dropped"),
        pytest.param(
            '<img src="a.jpg" alt="immagine" style="max-width:100%;"/><br/>Parchi riaperti',
            "Parchi riaperti",
            id="opencity-image-prefix",
        ),
        pytest.param(
            "Il Comune di Romano d&amp;rsquo;Ezzelino intende assegnare...]]&gt;",
            "Il Comune di Romano d’Ezzelino intende assegnare...",
            id="double-escaped-named-and-leaked-cdata",
        ),
        pytest.param("l&amp;#8217;avviso &amp;egrave; qui", "l’avviso è qui", id="double-numeric"),
        pytest.param(
            "&lt;p&gt;Primo.&lt;/p&gt;&lt;p&gt;Secondo.&lt;/p&gt;",
            "Primo.\n\nSecondo.",
            id="escaped-markup",
        ),
        pytest.param(
            "<p>𝗜𝗹 𝗰𝗮𝗹𝗱𝗼 𝗲 𝗹𝗲 𝘀𝗰𝗮𝗿𝘀𝗲 precipitazioni</p>",
            "Il caldo e le scarse precipitazioni",
            id="math-bold-nfkc",
        ),
        pytest.param("１１６１１７ numero unico", "116117 numero unico", id="full-width-digits"),
        pytest.param("25º Trofeo, 1ª rata", "25º Trofeo, 1ª rata", id="ordinals-kept"),
        pytest.param("a\u00a0\u00a0b\tc\u200bd", "a b cd", id="nbsp-tab-zero-width"),
        pytest.param(
            "Biciclettata! 🚴\u200d♂️", "Biciclettata! 🚴\u200d♂️", id="emoji-zwj-kept"
        ),
        pytest.param(
            "<p>Il Comune informa che\n  la strada è chiusa.</p>",
            "Il Comune informa che la strada è chiusa.",
            id="soft-wrapped-source",
        ),
        pytest.param(
            "NOTIZIA\nTitolo\n\n\n\nSi rende noto che.\n Prima pubb.: 03/08/2026",
            "NOTIZIA\nTitolo\n\nSi rende noto che.\nPrima pubb.: 03/08/2026",
            id="myportal-plain-lines",
        ),
        pytest.param("Temperature < 0 gradi", "Temperature < 0 gradi", id="stray-less-than"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Sagra dell&#8217;Assunta", "Sagra dell’Assunta", id="entity"),
        pytest.param("  Avviso\n   importante ", "Avviso importante", id="whitespace"),
        pytest.param("<b>Avviso</b> importante", "Avviso importante", id="tags"),
        pytest.param(
            "SCADENZA PAGAMENTO PRIMA RATA TARI 2026",
            "Scadenza pagamento prima rata TARI 2026",
            id="all-caps-acronym",
        ),
        pytest.param(
            "ORDINANZA DEL PRESIDENTE DELLA GIUNTA REGIONALE N. 72 DEL 1 LUGLIO 2026",
            "Ordinanza del presidente della giunta regionale N. 72 del 1 luglio 2026",
            id="all-caps-number",
        ),
        pytest.param(
            "𝗖𝗔𝗟𝗗𝗢 𝗘 𝗦𝗖𝗔𝗥𝗦𝗘 𝗣𝗥𝗘𝗖𝗜𝗣𝗜𝗧𝗔𝗭𝗜𝗢𝗡𝗜",
            "Caldo e scarse precipitazioni",
            id="math-bold-all-caps",
        ),
        pytest.param("𝗖𝗜 𝗦𝗧𝗢? 𝗔𝗙𝗙𝗔𝗥𝗘 𝗙𝗔𝗧𝗜𝗖𝗔", "Ci sto? Affare fatica", id="question"),
        pytest.param(
            "P.U.A. PICCOLA TERGOLA - ADOZIONE E DEPOSITO",
            "P.U.A. piccola tergola - adozione e deposito",
            id="dotted-acronym",
        ),
        pytest.param(
            "RILEVATI PFAS NELL'ACQUA DI ALCUNI POZZI PRIVATI",
            "Rilevati PFAS nell'acqua di alcuni pozzi privati",
            id="elision",
        ),
        pytest.param(
            "CHIUSURA SS11 E DIVIETO PM10: CIE, SPID E ISEE ALL'URP",
            "Chiusura SS11 e divieto PM10: CIE, SPID e ISEE all'URP",
            id="codes-and-acronyms",
        ),
        pytest.param(
            "FESTA DEL PAPA GIOVANNI XXIII E II EDIZIONE DI I GIOCHI",
            "Festa del papa giovanni XXIII e II edizione di i giochi",
            id="roman-numerals",
        ),
        pytest.param(
            "STAZIONE F.S. CHIUSA PER LAVORI ULSS",
            "Stazione F.S. chiusa per lavori ULSS",
            id="dotted-fs",
        ),
        pytest.param("Ufficio Anagrafe CHIUSO", "Ufficio Anagrafe CHIUSO", id="mixed-case-kept"),
        pytest.param("IMU 2026", "IMU 2026", id="short-caps-kept"),
        pytest.param(
            "Centri Estivi Ricreativi 2026⛱️☀️", "Centri Estivi Ricreativi 2026⛱️☀️", id="emoji"
        ),
        pytest.param("", "", id="empty"),
    ],
)
def test_clean_title(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected
    assert clean_title(expected) == expected  # idempotent: the summariser cleans again


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Si raccomanda di consultare il sito […]",
            "Si raccomanda di consultare il sito",
            id="wordpress-ellipsis",
        ),
        pytest.param("Testo troncato [...]", "Testo troncato", id="ascii-ellipsis"),
        pytest.param("Testo troncato […]", "Testo troncato", id="ellipsis-no-space"),
        pytest.param(
            "Strada chiusa dal 22 al 24 luglio.\n\nLeggi tutto su Via dell'Artigianato",
            "Strada chiusa dal 22 al 24 luglio.",
            id="drupal-leggi-tutto-line",
        ),
        pytest.param(
            "Anche nel nostro Comune agire è fondamentale.\n\nLeggi tutto: CALDO E SCARSE",
            "Anche nel nostro Comune agire è fondamentale.",
            id="joomla-readmore",
        ),
        pytest.param(
            "Il mercato si sposta in piazza. Continua a leggere →",
            "Il mercato si sposta in piazza.",
            id="continua-a-leggere-inline",
        ),
        pytest.param(
            "Il mercato si sposta. The post Mercato appeared first on Comune di Esempio.",
            "Il mercato si sposta.",
            id="the-post-appeared-first",
        ),
        pytest.param(
            "Il mercato si sposta.\nL'articolo Mercato proviene da Comune di Esempio.",
            "Il mercato si sposta.",
            id="articolo-proviene-da",
        ),
        pytest.param(
            "MARTEDÌ, 18 AGOSTO 2026\nLOTTA ALLE ZANZARE\nMisure di prevenzione\n\n"
            "Tempo di lettura:\n5 min\n\nLEGGI DI PIÙ",
            "LOTTA ALLE ZANZARE\nMisure di prevenzione",
            id="myportal-opencity",
        ),
        pytest.param(
            "Sopralluoghi in corso. Tempo di lettura: 3 min", "Sopralluoghi in corso.", id="read-time"
        ),
        pytest.param(
            "NOTIZIE  21 AGO 2026\nBIKE TO WORK\n\nPresentazione del progetto.\n\nLEGGI DI PIÙ\n"
            "SU LOREM IPSUM DOLOR SIT AMET, CONSECTETUR ADIPISCING ELIT...",
            "BIKE TO WORK\n\nPresentazione del progetto.",
            id="myportal-lorem",
        ),
        pytest.param(
            "Il Comune informa. Lorem ipsum dolor sit amet.",
            "Il Comune informa.",
            id="lorem-after-sentence",
        ),
        pytest.param(
            "NOTIZIA\nP.U.A. PICCOLA TERGOLA\n\nSi rende noto.\n\nPrima pubb.: 03/08/2026",
            "P.U.A. PICCOLA TERGOLA\n\nSi rende noto.",
            id="label-and-publication-date",
        ),
        pytest.param(
            "COMUNICATO\n08 gennaio 2026\nIl laboratorio.\nData di pubblicazione: 01/12/2025",
            "Il laboratorio.",
            id="label-then-date",
        ),
        pytest.param(
            "Chi legge di più vince un premio.", "Chi legge di più vince un premio.", id="prose-kept"
        ),
        pytest.param("", "", id="empty"),
    ],
)
def test_strip_boilerplate(text: str, expected: str) -> None:
    assert strip_boilerplate(text) == expected


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("Prezzo &#8364; 10 &#x2013; fine", "Prezzo € 10 – fine", id="numeric-entities-left-by-feedparser"),
        pytest.param("&amp;#8220;Bando&amp;#8221; &amp;amp; avviso", "“Bando” & avviso", id="double-escaped-numeric"),
        pytest.param("ＴＡＲＩ ２０２６ 𝐁𝐚𝐧𝐝𝐨 𝑖𝑡𝑎𝑙𝑖𝑐𝑜", "TARI 2026 Bando italico", id="nfkc-full-width-math"),
        pytest.param("Uno&nbsp;&nbsp;due\u00a0tre", "Uno due tre", id="nbsp-collapsed"),
        pytest.param('<img src="a.jpg"/><br/>Testo breve <img src="data:image/jpg;base64,iVBOR', "Testo breve",
                     id="unclosed-truncated-tag"),
    ],
)
def test_html_to_text_extras(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Il mercato riapre.\nScopri di più", "Il mercato riapre.", id="scopri-di-piu"),
        pytest.param("Il mercato riapre.\nULTERIORI INFORMAZIONI", "Il mercato riapre.", id="ulteriori-informazioni"),
        pytest.param("Il mercato riapre. Leggi di più", "Il mercato riapre.", id="leggi-di-piu-inline"),
        pytest.param("18 agosto 2026\nIl mercato riapre.", "Il mercato riapre.", id="date-prefix"),
        pytest.param("VENERDÌ, 7 AGOSTO 2026\nAVVISO\nIl mercato riapre.", "Il mercato riapre.", id="date-then-label"),
        pytest.param("Lorem ipsum dolor sit amet", "", id="lorem-only"),
        pytest.param("Ulteriori informazioni presso l'URP.", "Ulteriori informazioni presso l'URP.",
                     id="prose-with-the-words-kept"),
    ],
)
def test_strip_boilerplate_extras(text: str, expected: str) -> None:
    assert strip_boilerplate(text) == expected


@pytest.mark.parametrize(
    ("raw", "context", "expected"),
    [
        ("RINNOVO CIE E TARI: SPORTELLO SUAP E ASL CHIUSI PER IMU", "",
         "Rinnovo CIE e TARI: sportello SUAP e ASL chiusi per IMU"),
        ("IL SINDACO DI VICENZA INCONTRA LA REGIONE VENETO",
         "Il sindaco di Vicenza ha incontrato la Regione Veneto ieri.",
         "Il sindaco di Vicenza incontra la Regione Veneto"),
        ("LAVORI IN VIA ROMA", "Lavori in via Roma. Via libera ai cantieri.", "Lavori in via Roma"),
        ("CHIUSO IL MUNICIPIO", "Il municipio è chiuso. Il Municipio riapre lunedì.", "Chiuso il municipio"),
        ("Ufficio Anagrafe CHIUSO", "Ufficio anagrafe chiuso.", "Ufficio Anagrafe CHIUSO"),
    ],
)
def test_title_case_with_context(raw: str, context: str, expected: str) -> None:
    assert clean_title(raw, context) == expected


def test_references_to_undefined_entities_are_dropped_not_shown() -> None:
    # A hostile feed's DTD entities are never expanded; their names mean nothing to a reader.
    assert html_to_text("<p>Avviso &l9; importante &amp; urgente</p>") == "Avviso importante & urgente"
    assert clean_title("Titolo &lol9; della notizia") == "Titolo della notizia"
    assert html_to_text("Caff&amp;egrave; e R&amp;amp;D") == "Caffè e R&D"


# --- references and code points that name no character -------------------------------------

@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Festa &#55357;&#56832; in piazza", "Festa &#x1F600; in piazza", id="decimal-pair"),
        pytest.param("&#xD83D;&#xde00;", "&#x1F600;", id="hex-pair-mixed-case"),
        pytest.param("&#055357;&#x0DE00;", "&#x1F600;", id="leading-zeros-mixed-bases"),
        pytest.param("&#xD800; resto", "&#xFFFD; resto", id="lone-high"),
        pytest.param("&#56832;&#55357;", "&#xFFFD;&#xFFFD;", id="halves-in-the-wrong-order"),
        pytest.param("&#55357;&#55357;&#56832;", "&#xFFFD;&#x1F600;", id="high-then-pair"),
        pytest.param("&#55357; &#56832;", "&#xFFFD; &#xFFFD;", id="halves-apart"),
        pytest.param("&#0; &#1114112; &#99999999999999999999;", "&#xFFFD; &#xFFFD; &#xFFFD;", id="no-code-point"),
        pytest.param("l&#8217;avviso &#55000; &#x1F600;", "l&#8217;avviso &#55000; &#x1F600;", id="valid-untouched"),
        pytest.param("&amp;#55357;", "&amp;#55357;", id="escaped-is-not-a-reference-yet"),
    ],
)
def test_repair_references(text: str, expected: str) -> None:
    assert repair_references(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a \ud83d\ude00 b", "a \U0001f600 b", id="pair"),
        pytest.param("\ud800 x \udc80", "\ufffd x \ufffd", id="lone-halves"),
        pytest.param("\ude00\ud83d", "\ufffd\ufffd", id="wrong-order"),
        pytest.param("già 😀", "già 😀", id="valid-untouched"),
    ],
)
def test_repair_surrogates(text: str, expected: str) -> None:
    assert repair_surrogates(text) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Festa &#55357;&#56832; in piazza", "Festa \U0001f600 in piazza", id="pair-reference"),
        pytest.param("Festa &amp;#55357;&amp;#56832;", "Festa \U0001f600", id="pair-reference-escaped-twice"),
        pytest.param("<b>Festa</b> &#xD83D;&#xDE00;", "Festa \U0001f600", id="pair-reference-in-markup"),
        pytest.param("Festa &#xD800; in piazza", "Festa \ufffd in piazza", id="lone-reference"),
        pytest.param("Festa \ud83d\ude00 \udc80", "Festa \U0001f600 \ufffd", id="raw-halves"),
    ],
)
def test_titles_and_text_never_keep_surrogates(raw: str, expected: str) -> None:
    for result in (clean_title(raw), html_to_text(raw)):
        assert result == expected
        result.encode("utf-8")  # what the outbox and every channel do with it


def test_plain_text_never_keeps_raw_surrogates() -> None:
    assert strip_boilerplate("Festa \ud83d\ude00 \udc80.\nLeggi tutto") == "Festa \U0001f600 \ufffd."


# -- what must never reach an alert: stripped titles of text, control characters, glued words,
# placeholder text in another spelling.


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("History of the &lt;blink&gt; tag", "History of the <blink> tag", id="escaped-tag-is-text"),
        pytest.param("History of the <blink> tag", "History of the <blink> tag", id="unknown-tag-is-text"),
        pytest.param("&lt;b&gt;Avviso&lt;/b&gt; alla cittadinanza", "Avviso alla cittadinanza", id="escaped-markup"),
        pytest.param("<span>Avviso</span> <script>x()</script>TARI", "Avviso TARI", id="markup-and-script"),
        pytest.param("Tom &amp;amp;amp; Jerry", "Tom & Jerry", id="escaped-three-times"),
        pytest.param("Ponte <Nord> chiuso", "Ponte <Nord> chiuso", id="angle-brackets-in-prose"),
    ],
)
def test_clean_title_keeps_text_that_looks_like_a_tag_and_is_idempotent(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected
    assert clean_title(clean_title(raw)) == clean_title(raw)


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x07", "\x08", "\x1b", "\x7f", "\x9b"])
def test_control_characters_never_reach_titles_or_text(control: str) -> None:
    assert clean_title(f"Avviso{control} chiusura") == "Avviso chiusura"
    assert html_to_text(f"<p>Ufficio{control} chiuso.</p>") == "Ufficio chiuso."
    assert html_to_text(f"Ufficio{control} chiuso.") == "Ufficio chiuso."
    assert strip_boilerplate(f"Ufficio{control} chiuso.") == "Ufficio chiuso."


def test_a_form_feed_or_vertical_tab_is_a_line_break() -> None:
    assert html_to_text("Primo.\x0cSecondo.\x0bTerzo.") == "Primo.\nSecondo.\nTerzo."


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        pytest.param("Paga la multa.<span>Potrai farlo online.</span>", "Paga la multa. Potrai farlo online.",
                     id="sentence-end-then-span"),
        pytest.param("Orari:<b>lunedì</b> e martedì", "Orari: lunedì e martedì", id="colon-then-bold"),
        pytest.param("Ufficio tributi<strong>Chiuso</strong> oggi", "Ufficio tributi Chiuso oggi",
                     id="word-then-capital"),
        pytest.param("<b>C</b>omune di Vicenza", "Comune di Vicenza", id="drop-cap-not-split"),
        pytest.param("alle ore 10.<b>30</b>", "alle ore 10.30", id="time-not-split"),
        pytest.param("sul sito www.<b>comune</b>.esempio.it", "sul sito www.comune.esempio.it", id="address-not-split"),
        pytest.param("<i>Avviso</i>: chiuso", "Avviso: chiuso", id="no-space-before-colon"),
    ],
)
def test_inline_markup_never_glues_words(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


@pytest.mark.parametrize("placeholder", ["Lorem ipsum dolor sit amet.", "Lorem, ipsum dolor sit amet.",
                                         "LOREM-IPSUM dolor.", "lorem  ipsum."])
def test_placeholder_text_in_any_spelling_is_dropped(placeholder: str) -> None:
    assert strip_boilerplate(f"Il mercato è spostato in piazza. {placeholder}") == "Il mercato è spostato in piazza."


@pytest.mark.parametrize(
    ("sentence", "expected"),
    [
        pytest.param("Si rende noto che l’Amministrazione Comunale di Bressanvido, con deliberazione di Giunta "
                     "Comunale n. 85 del 05/08/2026 ha istituito una mostra mercato.",
                     "L’Amministrazione Comunale di Bressanvido ha istituito una mostra mercato.", id="bressanvido"),
        pytest.param("SI RENDE NOTO che in data 25/03/2026 il Consiglio Comunale con Deliberazione n. 2 ha approvato "
                     "la variante.", "In data 25/03/2026 il Consiglio Comunale ha approvato la variante.",
                     id="shouted-formula-deliberation-without-date"),
        pytest.param("Si informa la cittadinanza che il ponte è chiuso.", "Il ponte è chiuso.", id="cittadinanza"),
        pytest.param("Si avvisano i cittadini che lo sportello è chiuso.", "Lo sportello è chiuso.", id="cittadini"),
        pytest.param("Con la presente si comunica che gli uffici sono chiusi.", "Gli uffici sono chiusi.",
                     id="con-la-presente-si-comunica"),
        pytest.param("Con la presente l’Ufficio Tributi ricorda la scadenza.", "L’Ufficio Tributi ricorda la scadenza.",
                     id="con-la-presente"),
        pytest.param("Con delibera C.C. n. 5 del 27.04.2026 il Comune ha aderito alla rete.",
                     "Il Comune ha aderito alla rete.", id="deliberation-opens"),
        pytest.param("Approvato con Delibera di Consiglio Comunale n. 26 del 28/07/2026.",
                     "Approvato con Delibera di Consiglio Comunale n. 26 del 28/07/2026.",
                     id="the-reference-is-the-news"),
        pytest.param("Il sindaco informa che la piazza è chiusa.", "Il sindaco informa che la piazza è chiusa.",
                     id="no-formula"),
        pytest.param("Si rende noto che", "", id="only-a-formula"),
    ],
)
def test_drop_formulas(sentence: str, expected: str) -> None:
    assert drop_formulas(sentence) == expected


def test_restore_case_reads_a_shouted_sentence_as_a_title() -> None:
    shouted = "IL VERSAMENTO DELLA TARI SCADE IL 16 SETTEMBRE."
    assert restore_case(shouted) == "Il versamento della TARI scade il 16 settembre."
