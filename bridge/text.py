"""Plain-text normalisation of feed text: HTML to text, titles, feed boilerplate. Pure.

Everything the rest of the pipeline reads as "text" passes through here, so the rules are
in one place: entities decoded (also the double-escaped ones some CMSs emit), NFKC (the
"mathematical bold" letters pasted from social media become plain letters, full-width
digits plain digits; the ordinal indicators º/ª stay), whitespace collapsed. Line
structure is kept on purpose: a single "\\n" is a line break, "\\n\\n" a paragraph
break, so the summariser never glues the last words of one paragraph to the first words
of the next.
"""

from __future__ import annotations

import html
import re
import sys
import unicodedata

from bs4 import BeautifulSoup, Comment, Declaration, Doctype, Tag
from bs4.element import NavigableString, ProcessingInstruction

__all__ = [
    "clean_title",
    "drop_formulas",
    "html_to_text",
    "is_shouted",
    "repair_references",
    "repair_surrogates",
    "restore_case",
    "strip_boilerplate",
]

# Elements whose text is never shown to a reader.
_DROPPED_TAGS = frozenset({"script", "style", "noscript", "template", "head", "title", "iframe"})

# Elements that start a new paragraph. `td`/`th` are here too: a table row's cells are
# separate facts (opening hours, names), never one sentence.
_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
        "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th",
        "thead", "tr", "ul",
    }
)  # fmt: skip

_LINE = "\x00L"  # placeholder for <br>; NUL is removed from the input first (`_CONTROL_RE`)
_PARA = "\x00P"  # placeholder for a block boundary
_SOFT = "\x00S"  # placeholder for an inline tag's edge: no space in the source, maybe one to add

# Control characters (C0 but tab and line ends, DEL, C1): never text a reader sees. Vertical
# tab, form feed and NEL are line breaks; the others are removed.
_CONTROL_RE = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")
_CONTROL_BREAK_RE = re.compile("[\x0b\x0c\x85]")
# An inline tag's edge where the source has no space but two words meet: a sentence end
# before a capital ("multa.<span>Potrai"), a comma or colon before a letter, a lower-case
# word before a capitalised one. Anywhere else ("<b>C</b>omune", "10.<b>30</b>",
# "www.<b>comune</b>.it") the edge adds nothing.
_SOFT_SPACE_RE = re.compile(
    rf"(?:(?<=[.!?…])(?:{_SOFT})+(?=[A-ZÀ-ÖØ-Þ])|(?<=[;:,])(?:{_SOFT})+(?=[^\W\d_])|"
    rf"(?<=[a-zß-öø-ÿ])(?:{_SOFT})+(?=[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]))"
)


def _without_controls(text: str) -> str:
    """`text` with control characters removed (line-breaking ones made line breaks)."""
    return _CONTROL_RE.sub("", _CONTROL_BREAK_RE.sub("\n", text))

# A real tag, as opposed to a stray "<" in prose ("temperature < 0 gradi").
_TAG_RE = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*\b[^<>]*|/[a-zA-Z][a-zA-Z0-9]*\s*|!--.*?--)>", re.S)
# Only entities with their semicolon: html.unescape alone also expands "&para" in "&parametri".
_ENTITY_RE = re.compile(r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z][a-zA-Z0-9]{1,31});")
# Invisible characters that survive NFKC and break word matching. Not ZWJ/ZWNJ: they
# hold emoji sequences together ("🚴‍♂️").
_INVISIBLE_RE = re.compile("[\u00ad\u200b\u2060\ufeff]")
_HSPACE_RE = re.compile(r"[^\S\n]+")
_LEAKED_CDATA_RE = re.compile(r"\]\]>|<!\[CDATA\[")
# A tag cut off by a truncated description ('<img src="data:image/jpg;base64,iVBOR...'):
# it never closes, so no parser removes it.
_UNCLOSED_TAG_RE = re.compile(r"<[a-zA-Z][a-zA-Z0-9]*\s[^<>]*$")


# NFKC would turn the Italian ordinal indicators into letters ("25º Trofeo" -> "25o").
_KEEP_FROM_NFKC = re.compile("([ºª])")


def _nfkc(text: str) -> str:
    """NFKC, except for the characters in `_KEEP_FROM_NFKC`."""
    return "".join(
        part if _KEEP_FROM_NFKC.fullmatch(part) else unicodedata.normalize("NFKC", part)
        for part in _KEEP_FROM_NFKC.split(text)
    )


# What is left looking like "&name;" after decoding is a reference to an entity that no HTML
# defines: the DTD of a hostile feed ("entity bomb"), never expanded. It means nothing to a reader.
_UNDEFINED_ENTITY_RE = re.compile(r"&[A-Za-z][A-Za-z0-9]{0,31};")


# --- references that name no character -----------------------------------------------------
#
# Some CMS escapers write a character outside the Basic Multilingual Plane (an emoji) as its
# two UTF-16 halves, "&#55357;&#56832;" for U+1F600, and MySQL's 3-byte "utf8" stores it as
# the UTF-8 bytes of those halves. Neither names a character: XML parsers refuse it,
# feedparser's fallback parser crashes on it (the whole feed with it), and html.unescape
# makes two U+FFFD. The halves of a pair are joined into the character they stand for; a
# half alone, a reference to zero or past U+10FFFF becomes U+FFFD, as HTML decodes it.

_NUMERIC_REF_RE = re.compile(r"&#(?:([0-9]+)|[xX]([0-9a-fA-F]+));")
# Cheap test for a reference `repair_references` may rewrite (a superset: the digits of a
# surrogate, of zero, or seven or more of them), so that the common "&#8217;" costs no callback.
_SUSPECT_REF_RE = re.compile(
    r"&#(?:0*(?:5[5-7][0-9]{3}|[0-9]{7,})|0+|[xX]0*(?:[dD][89a-fA-F][0-9a-fA-F]{2}|[0-9a-fA-F]{6,})|[xX]0+);"
)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")
_REPLACEMENT = 0xFFFD
_MAX_DIGITS = 8  # more than any code point needs; also keeps int() away from huge digit strings


def _ref_code_point(match: re.Match[str]) -> int:
    decimal, hexadecimal = match.group(1), match.group(2)
    digits = (decimal if decimal is not None else hexadecimal).lstrip("0") or "0"
    if len(digits) > _MAX_DIGITS:
        return sys.maxunicode + 1
    return int(digits) if decimal is not None else int(digits, 16)


def _is_high(code: int) -> bool:
    return 0xD800 <= code <= 0xDBFF


def _is_low(code: int) -> bool:
    return 0xDC00 <= code <= 0xDFFF


def _joined(high: int, low: int) -> int:
    return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)


def repair_references(text: str) -> str:
    """Return `text` with every numeric character reference that names a character left as
    it is, and the others rewritten: two adjacent references to the halves of a UTF-16
    surrogate pair become one reference to the character ("&#55357;&#56832;" ->
    "&#x1F600;"); a lone half, "&#0;" and a reference past U+10FFFF become "&#xFFFD;".
    Only ASCII is read and written, so this works on any ASCII-compatible encoding too."""
    if not _SUSPECT_REF_RE.search(text):
        return text
    out: list[str] = []
    position = 0
    matches = list(_NUMERIC_REF_RE.finditer(text))
    index = 0
    while index < len(matches):
        match = matches[index]
        code = _ref_code_point(match)
        replacement: int | None = None
        consumed = 1
        if _is_high(code) and index + 1 < len(matches):
            following = matches[index + 1]
            low = _ref_code_point(following)
            if following.start() == match.end() and _is_low(low):
                replacement, consumed = _joined(code, low), 2
        if replacement is None and (0xD800 <= code <= 0xDFFF or code == 0 or code > sys.maxunicode):
            replacement = _REPLACEMENT
        if replacement is not None:
            out.append(text[position : match.start()])
            out.append(f"&#x{replacement:X};")
            position = matches[index + consumed - 1].end()
        index += consumed
    out.append(text[position:])
    return "".join(out)


def repair_surrogates(text: str) -> str:
    """Return `text` with raw UTF-16 surrogates (which no encoder can write) repaired: a high
    half followed by a low half becomes the character they stand for, any other half U+FFFD."""
    if not _SURROGATE_RE.search(text):
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        code = ord(text[index])
        if _is_high(code) and index + 1 < len(text) and _is_low(ord(text[index + 1])):
            out.append(chr(_joined(code, ord(text[index + 1]))))
            index += 2
            continue
        out.append("\ufffd" if 0xD800 <= code <= 0xDFFF else text[index])
        index += 1
    return "".join(out)


def _decode_entities(text: str) -> str:
    """Decode character references, twice at most, for feeds that escaped them twice; drop
    references to entities that HTML does not define. Surrogate halves are joined first
    (`repair_references`)."""
    for _ in range(2):
        if not _ENTITY_RE.search(text):
            break
        text = _ENTITY_RE.sub(lambda m: html.unescape(m.group(0)), repair_references(text))
    return _drop_undefined_entities(text)


def _drop_undefined_entities(text: str) -> str:
    """Remove "&name;" references that HTML does not define (known ones are left alone)."""
    return _UNDEFINED_ENTITY_RE.sub(lambda m: "" if html.unescape(m.group(0)) == m.group(0) else m.group(0), text)


def _soup_text(markup: str) -> str:
    """Flatten HTML into text with `_LINE`/`_PARA` placeholders for its structure."""
    soup = BeautifulSoup(markup, "html.parser")
    parts: list[str] = []

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Tag):
                name = child.name.lower()
                if name in _DROPPED_TAGS:
                    continue
                if name == "br":
                    parts.append(_LINE)
                elif name in _BLOCK_TAGS:
                    parts.append(_PARA)
                    walk(child)
                    parts.append(_PARA)
                else:
                    parts.append(_SOFT)
                    walk(child)
                    parts.append(_SOFT)
            elif isinstance(
                child, Comment | Declaration | Doctype | ProcessingInstruction
            ):  # markup, not text
                continue
            elif isinstance(child, NavigableString):
                parts.append(str(child))

    walk(soup)
    return "".join(parts)


def _normalise(text: str) -> str:
    """NFKC, invisible characters out, whitespace collapsed; keeps line/paragraph breaks."""
    text = _nfkc(repair_surrogates(text))
    text = _INVISIBLE_RE.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u2028", "\n").replace("\u2029", "\n\n")
    text = _HSPACE_RE.sub(" ", text)
    text = _SOFT_SPACE_RE.sub(" ", text).replace(_SOFT, "")
    text = text.replace(_LINE, "\n").replace(_PARA, "\n\n")
    text = _HSPACE_RE.sub(" ", _without_controls(text))
    lines = [line.strip() for line in text.split("\n")]
    # Runs of empty lines (block boundaries stacked on source newlines) become one
    # paragraph break; a lone newline stays a line break.
    out: list[str] = []
    blank = 0
    for line in lines:
        if not line:
            blank += 1
            continue
        if out:
            out.append("\n\n" if blank else "\n")
        out.append(line)
        blank = 0
    joined = "".join(out)
    # A line break inside a sentence (hard-wrapped source text) is a soft wrap: the next
    # line goes on in lower case after a line that did not end a clause.
    return re.sub(r"(?<=[^\s.!?:;])\n(?=[a-zà-ÿ])", " ", joined)


def html_to_text(html_text: str) -> str:
    """Return the readable plain text of an HTML fragment (or of plain text).

    Block elements (p, div, li, h1-h6, tr, ...) become paragraph breaks ("\\n\\n"), `<br>`
    a line break ("\\n"); script/style/noscript are dropped; images leave no text. Entities
    are decoded, including double-escaped ones (`&amp;egrave;`, `&amp;#8217;`), and markup
    that was escaped twice is parsed once more; a tag cut off by a truncated description
    (an unclosed `<img src="data:...`) is dropped. The result is NFKC-normalised, has no NBSP
    or invisible characters, no control characters, single spaces inside lines, no
    leading/trailing whitespace. An inline tag between two words that the source did not
    space ("multa.<span>Potrai") leaves one space between them ("multa. Potrai").
    Never raises on malformed markup; returns "" for empty input.
    """
    # Before the HTML parser, which would keep an undefined "&l9;" as "&l9" and lose the ";",
    # and would decode each half of a surrogate pair to U+FFFD.
    text = _without_controls(html_text)
    text = _drop_undefined_entities(_UNCLOSED_TAG_RE.sub("", repair_surrogates(repair_references(text))))
    # Two rounds: feeds that escape their HTML twice hand us "&lt;p&gt;" after XML parsing.
    for _ in range(2):
        if _TAG_RE.search(text):
            text = _soup_text(text)
        text = _decode_entities(text)
        if not _TAG_RE.search(text):
            break
    text = _LEAKED_CDATA_RE.sub("", text)
    text = _UNCLOSED_TAG_RE.sub("", text)
    return _normalise(text)


# --- titles --------------------------------------------------------------------------------

# Acronyms kept upper case when an ALL-CAPS title is turned to sentence case: taxes, IDs,
# health and public bodies, law and planning instruments, common Italian abbreviations.
_ACRONYMS = frozenset(
    """
    ACI ACLI ADMO AIDO AIRE ANAS ANCI ANPR APP APS ARPAV ASD ASL ASP ATER ATO ATS AULSS AVIS
    BES CAAF CAF CAI CAP CCR CDS CER CGIL CGN CIE CIG CISL CNS CO2 COC CONAI CONI COSAP COVID
    CRI CUP CV DAT DGR DGRV DIA DL DLGS DM DPCM DPR DSA DSU DUP EE ENEL ERP ETS EU FAI FIDAS
    GDPR GPL IBAN ICI IMU INAIL INPS IPAB IRPEF ISEE ISTAT IUC IVA LED MIM MIUR NAS NUE ODV
    ONLUS ONU PAT PC PCTO PD PEBA PEC PEEP PFAS PI PIN PM PNRR POS PRG PUA PUK QR RAEE RFI
    RSA RSU RUP SAD SCIA SDI SIAE SIL SMS SPID SPRAR SUA SUAP SUE TARI TASI TOSAP TPL TV
    TUEL UE UIL ULSS UNESCO URP USA USL UTC ZTL
    """.split()
)
_ROMAN_RE = re.compile(r"^(?=[IVX]{2,}$)X{0,3}(?:IX|IV|V?I{0,3})$")
_DOTTED_ACRONYM_RE = re.compile(r"^(?:[^\W\d_]\.){2,}[^\W\d_]?\.?$")
_LETTERS_RE = re.compile(r"[^\W\d_]+")


def _is_all_caps(text: str) -> bool:
    """True when most cased letters are upper case (a shouted title, not "Ufficio CHIUSO")."""
    letters = [c for c in text if c.isalpha() and (c.isupper() or c.islower())]
    if len(letters) < 4:
        return False
    upper = sum(1 for c in letters if c.isupper())
    return upper / len(letters) >= 0.8


def _sentence_case_token(token: str) -> str:
    """Lower-case one whitespace-delimited token of a shouted title, keeping what must stay."""
    core = token.strip("()[]{}«»“”\"'’‘,;:!?")
    if any(c.isdigit() for c in core):
        return token  # "PM10", "SS11", "COVID-19", "S.P.34": codes keep their case
    if _DOTTED_ACRONYM_RE.match(core) or re.fullmatch(r"[^\W\d_]\.", core):
        return token  # "P.U.A.", "F.S.", "N." (as in "N. 72"), initials

    def piece(match: re.Match[str]) -> str:
        word = match.group(0)
        if word in _ACRONYMS or _ROMAN_RE.match(word):
            return word
        return word.lower()

    return _LETTERS_RE.sub(piece, token)


# A capitalised word inside a sentence (not after its start): a name the body spells.
_NAME_IN_TEXT_RE = re.compile(r"(?:(?<=[^\W\d_] )|(?<=[^\W\d_][,;:] ))([A-ZÀ-Þ][a-zß-ÿ]+)\b")


def _names(context: str) -> frozenset[str]:
    """Lower-cased words that `context` writes capitalised mid-sentence and never in lower
    case ("Vicenza", "Regione Veneto"): the proper nouns a shouted title hides."""
    capitalised = {m.group(1).lower() for m in _NAME_IN_TEXT_RE.finditer(context)}
    lower = set(re.findall(r"\b[a-zß-ÿ]+\b", context))
    return frozenset(capitalised - lower)


def _sentence_case(title: str, names: frozenset[str] = frozenset()) -> str:
    """Sentence case for an ALL-CAPS title: first letter and after "!"/"?" upper; `names`
    (lower-cased) get their capital back."""
    tokens = title.split(" ")
    cased = [_sentence_case_token(t) for t in tokens]
    if names:
        cased = [
            _LETTERS_RE.sub(lambda m: m.group(0).capitalize() if m.group(0) in names else m.group(0), t)
            for t in cased
        ]
    out = " ".join(cased)
    # Upper-case the first letter of the title and of any sentence after "!" or "?".
    # After "." we do not: "N. 72", "P.U.A. piccola" are not sentence ends.
    chars = list(out)
    capitalise = True
    for i, c in enumerate(chars):
        if capitalise and c.isalpha():
            chars[i] = c.upper()
            capitalise = False
        elif c in "!?":
            capitalise = True
        elif capitalise and c.isdigit():
            capitalise = False  # "2026 anno ..." stays as is
    return "".join(chars)


# In a title, markup is: a tag of an element of current HTML, any tag with attributes
# ('<svg onload="...">'), any closing tag, a comment; script, style and the like go with
# their content. A bare "<word>" that names no such element ("History of the <blink> tag",
# "Ponte <Nord>") is text the title is about and stays, so that cleaning a clean title
# changes nothing.
_TITLE_ELEMENTS = (
    "a|abbr|address|article|aside|audio|b|bdi|bdo|big|blockquote|br|button|canvas|center|cite|"
    "code|data|dd|del|details|dfn|dialog|div|dl|dt|em|embed|fieldset|figcaption|figure|font|"
    "footer|form|h[1-6]|header|hr|i|iframe|img|input|ins|kbd|label|li|link|main|mark|math|meta|"
    "nav|object|ol|option|p|picture|pre|q|s|samp|section|select|small|source|span|strike|strong|"
    "sub|summary|sup|svg|table|tbody|td|textarea|tfoot|th|thead|time|tr|tt|u|ul|var|video|wbr"
)
_TITLE_TAG_RE = re.compile(
    rf"<(?:/?(?:{_TITLE_ELEMENTS})\b[^<>]*|[a-zA-Z][\w:-]*[\s/][^<>]*|/[a-zA-Z][\w:-]*\s*|!--.*?--)>",
    re.I | re.S,
)
_TITLE_DROPPED_RE = re.compile(r"<(script|style|noscript|template|title|head)\b[^<>]*>.*?</\1\s*>", re.I | re.S)


def _title_text(raw: str) -> str:
    """Markup out of a title, entities decoded, until nothing changes: a title escaped once
    or twice comes out the same, and the result is a fixed point. Every round makes the
    text shorter, so the loop ends."""
    text = raw
    while True:
        previous = text
        text = _TITLE_DROPPED_RE.sub(" ", text)
        text = _TITLE_TAG_RE.sub(" ", text)
        text = _decode_entities(text)
        if text == previous:
            return text


def clean_title(raw: str, context: str = "") -> str:
    """Return a one-line, plain-text title.

    Markup removed: tags of current HTML elements, tags with attributes, closing tags
    (script, style and the like with their content); a bare "<word>" naming no such element
    is kept as text, also when it came escaped ("&lt;blink&gt;"). Entities decoded (also double-escaped ones),
    NFKC, control characters removed, whitespace collapsed to single spaces. A title that
    is ALL CAPS (at least 80% of its letters upper case) becomes sentence case, keeping
    acronyms (TARI, IMU, ULSS, ...), dotted abbreviations ("P.U.A.", "N."), codes with
    digits ("PM10", "SS11") and roman numerals, and giving back their capital to the names
    that `context` (the item's plain text, when the caller has it) writes capitalised
    mid-sentence and never in lower case ("Vicenza"); any other title keeps its case.
    Idempotent: `clean_title(clean_title(x)) == clean_title(x)`.
    """
    text = _title_text(_without_controls(repair_surrogates(raw)))
    text = _nfkc(text)
    text = _without_controls(_INVISIBLE_RE.sub("", text))
    text = _LEAKED_CDATA_RE.sub("", text)
    text = " ".join(text.split())
    if _is_all_caps(text):
        text = _sentence_case(text, _names(context) if context else frozenset())
    return text


# --- boilerplate ---------------------------------------------------------------------------

_MONTHS = (
    "gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|"
    "dicembre|gen|feb|mar|apr|mag|giu|lug|ago|set|sett|ott|nov|dic"
)
_WEEKDAYS = "luned[iì]|marted[iì]|mercoled[iì]|gioved[iì]|venerd[iì]|sabato|domenica"
_LABELS = r"notizi[ae]|news|comunicat[oi](?: stampa)?|avvis[oi]|event[oi]|novit[aà]"

# A first line copied from a listing page: "MARTEDÌ, 18 AGOSTO 2026", "NOTIZIE  21 AGO 2026".
_LEADING_DATE_RE = re.compile(
    rf"^(?:(?:{_LABELS})\s+)?(?:(?:{_WEEKDAYS}),?\s+)?\d{{1,2}}\s+(?:{_MONTHS})\.?\s+\d{{4}}$",
    re.I,
)
_LEADING_LABEL_RE = re.compile(rf"^(?:{_LABELS})$", re.I)
# "Data di pubblicazione: 01/12/2025", "Prima pubb.: 03/08/2026" (MyPortal listings).
_DATE_META_LINE_RE = re.compile(
    r"^(?:data di pubblicazione|prima pubb\.?|pubblicato il|ultimo aggiornamento|"
    r"ultima modifica|data)\s*:?\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$",
    re.I,
)
_ELLIPSIS_BRACKET_RE = re.compile(r"[ \t]*\[\s*(?:…|\.\.\.|&#8230;|&hellip;)\s*\]")
_READ_TIME_RE = re.compile(r"Tempo di lettura\s*:?\s*\d+\s*min(?:uti|\.)?", re.I)
_READ_MORE = (
    r"leggi tutto|continua a leggere|leggi di pi[uù]|leggi l['’]articolo|leggi la notizia|"
    r"ulteriori informazioni$|scopri di pi[uù]|vai alla notizia|approfondisci$"
)
# A line that is only (or starts with) a read-more link: "Leggi tutto: TITOLO", "LEGGI DI PIÙ".
_READ_MORE_LINE_RE = re.compile(rf"^(?:{_READ_MORE})\b.*$", re.I | re.M)
# A read-more link after the last sentence on the same line.
_READ_MORE_TAIL_RE = re.compile(rf"(?<=[.!?…\]»”)])[ \t]*(?:{_READ_MORE})\b[^\n]*$", re.I | re.M)
_POST_APPEARED_RE = re.compile(
    r"[ \t]*(?:The post\b[^\n]*?\bappeared first on\b|L['’]articolo\b[^\n]*?\bproviene da\b|"
    r"Il post\b[^\n]*?\bè apparso per la prima volta su\b)[^\n]*",
    re.I,
)
# "Lorem ipsum", also "Lorem, ipsum" and "LOREM-IPSUM".
_LOREM_RE = re.compile(r"lorem\W+ipsum", re.I)
_SENTENCE_END_RE = re.compile(r"[.!?][\"”»’')\]]*(?=\s)")


def _drop_lorem(line: str) -> str:
    """Cut a line at the sentence where placeholder text ("Lorem ipsum ...") begins."""
    match = _LOREM_RE.search(line)
    if not match:
        return line
    head = line[: match.start()]
    ends = list(_SENTENCE_END_RE.finditer(head + " "))
    # Keep the real sentences before the placeholder; the fragment glued to it ("SU LOREM
    # IPSUM", a theme's "Leggi di più su Lorem ipsum") goes with it.
    return head[: ends[-1].end()].rstrip() if ends else ""


def strip_boilerplate(text: str) -> str:
    """Return `text` (plain text, as from `html_to_text`) without feed boilerplate.

    Removes: "[…]" / "[...]" truncation marks, "Leggi tutto", "Continua a leggere",
    "Leggi di più", "Scopri di più", "Vai alla notizia" links, a last "Ulteriori informazioni"
    button line, "The post … appeared first on …" (and its Italian forms),
    "Tempo di lettura: N min" (also across lines), "Data di pubblicazione: dd/mm/yyyy"
    lines, leading listing-page date lines ("MARTEDÌ, 18 AGOSTO 2026") and label lines
    ("NOTIZIA", "COMUNICATO"), "Lorem ipsum" placeholder text, leaked "]]>". Keeps line and
    paragraph breaks of what remains; never removes words from inside a sentence.
    """
    text = _LEAKED_CDATA_RE.sub("", text)
    text = _ELLIPSIS_BRACKET_RE.sub("", text)
    text = _POST_APPEARED_RE.sub("", text)
    text = _READ_TIME_RE.sub("", text)
    text = _READ_MORE_TAIL_RE.sub("", text)
    text = _READ_MORE_LINE_RE.sub("", text)
    lines = [_drop_lorem(line).strip() for line in text.split("\n")]
    lines = [line for line in lines if not _DATE_META_LINE_RE.match(line)]
    # Leading labels and dates, in any order ("NOTIZIA" then a date, or the reverse).
    start = 0
    while start < len(lines):
        line = lines[start]
        if not line or _LEADING_DATE_RE.match(line) or _LEADING_LABEL_RE.match(line):
            start += 1
            continue
        break
    return _normalise("\n".join(lines[start:]))


# --- shouted bodies ------------------------------------------------------------------------


def is_shouted(text: str) -> bool:
    """True when `text` is ALL CAPS as `clean_title` means it (at least 80% of its cased
    letters upper case, four letters at least)."""
    return _is_all_caps(text)


def restore_case(sentence: str, context: str = "") -> str:
    """One sentence of a shouted text in sentence case, as `clean_title` turns a shouted
    title (acronyms, codes, dotted abbreviations and roman numerals kept, the names that
    `context` writes capitalised given back their capital). Only letters change case."""
    return _sentence_case(sentence, _names(context) if context else frozenset())


# --- bureaucratic formulas -----------------------------------------------------------------

# The opening formula of an official notice: "Si rende noto che", "Si informa la
# cittadinanza che", "Si avvisano i cittadini che", "Con la presente si comunica che",
# "Con la presente". It says nothing to a citizen; the fact follows it.
_FORMULA_RE = re.compile(
    r"^(?:con la presente\s*,?\s*)?"
    r"(?:si\s+(?:rende\s+noto|informa(?:no)?|comunica(?:no)?|avvisa(?:no)?|avverte|porta\s+a\s+conoscenza)"
    r"(?:\s*,?\s+(?:la|le|i|gli|tutti\s+i|tutte\s+le)\s+(?:gentil[ei]\s+)?"
    r"(?:cittadinanza|popolazione|utenza|utenti|cittadini|famiglie|residenti|genitori)"
    r"(?:\s+interessat[aeio])?)?"
    r"\s*,?\s+che\b\s*,?\s*|con la presente\b\s*,?\s*(?=\S))",
    re.I,
)
_REF_DATE = rf"(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-]\d{{2,4}}|\d{{1,2}}\s+(?:{_MONTHS})\s+\d{{4}})"
# A reference to the deliberation behind a notice, introduced by "con" (or "giusta", "come
# da"): "con deliberazione di Giunta Comunale n. 85 del 05/08/2026", "con Delibera C.C. n. 5
# del 27.04.2026", "con deliberazione n. 27 di reg. in data 31/03/2026", with the commas that
# set it off.
_DELIBERATION_RE = re.compile(
    r"(?:,\s*)?\b(?:con|giusta|come\s+da)\s+(?:la\s+|propria\s+)?(?:deliberazione|delibera)\b"
    r"(?:\s+(?:di|della|del)\b)?"
    r"(?:\s+(?:(?:Giunta|Consiglio)(?:\s+(?:Comunale|Regionale))?|[GC]\.\s?C\.|C\.\s?C\.|D\.\s?G\.\s?C\.))?"
    r"\s+(?:n\.|n°|nr\.?|N\.)\s*\d+(?:/\d{2,4})?"
    r"(?:\s+di\s+reg\.)?"
    rf"(?:\s+(?:del|in\s+data)\s+{_REF_DATE})?"
    r"(?:\s*,(?=\s))?",
    re.I,
)
_FIRST_LETTER_RE = re.compile(r"^([^\w]*)(\w)")


def drop_formulas(sentence: str) -> str:
    """`sentence` without its bureaucratic formulas: an opening "Si rende noto che", "Si
    informa la cittadinanza che", "Con la presente" (see `_FORMULA_RE`), and references to a
    deliberation introduced by "con" ("con deliberazione di Giunta Comunale n. 85 del
    05/08/2026"). Only words are removed, never added: the first letter of what remains is
    capitalised when the sentence start was removed. A sentence that is nothing but a
    formula comes back "". Pure."""
    text = _DELIBERATION_RE.sub(" ", sentence)
    if len(text.split()) < 3:
        text = sentence  # "Approvato con delibera n. 26 del 28/07/2026.": the reference is the news
    text = _FORMULA_RE.sub("", text.strip())
    if text == sentence:
        return sentence
    text = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(text.split())).lstrip(" ,;:")
    if not any(c.isalnum() for c in text):
        return ""
    if sentence[:1].isupper():
        text = _FIRST_LETTER_RE.sub(lambda m: m.group(1) + m.group(2).upper(), text, count=1)
    return text
