"""Italian sentence segmentation for alert summaries. Pure.

Rule-based on purpose: the texts are short leads written by municipal offices, their
pitfalls are a known list (legal references "art. 5", "D.Lgs. 50/2016", titles "Dott.ssa",
addresses "p.zza", initials "G. Verdi", "ore 10.30", "1.500 euro"), and a rule that fails
fails visibly in a test instead of drifting with a model. Line and paragraph breaks always
end a sentence: in feed text they separate headings, dates and list items from prose.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["is_complete_sentence", "split_sentences"]

# Abbreviations after which a period never ends a sentence (compared lower-cased, without
# the final period). Titles, legal references, addresses, phone numbers, months.
_NEVER_FINAL = frozenset(
    """
    all amm arch art artt ass assess avv cav com comm dir ist pres prov resp soc uff
    c.c c.p c.so ca cap cell cfr cod col cons d.g.c d.g.r d.g.r.v d.l
    d.lgs d.m d.p.c.m d.p.r dott dott.ssa dr egr es fax fg fraz g.u gen geom gent ill ing int
    l.go l.r lett loc magg mapp mons n nn nr num on ord p.le p.za p.zza pag pagg pp prof
    prof.ssa prot rag reg rep rif sen sez sig sig.na sig.ra sigg spett ss str sub tel ten
    v.le v.lo vd vol
    feb mar apr mag giu lug ago set sett ott nov dic
    """.split()
)
# Abbreviations that end a sentence when a capitalised word follows ("... ecc. Il bando"),
# not otherwise ("ecc. per", "S.p.A. (gestore)", "c.a. 2026"). "c.a." (corrente anno) and
# "p.v." (prossimo venturo) are here rather than in _NEVER_FINAL because in news leads they
# usually close a date at the end of a sentence ("entro il 30 settembre p.v. Le domande").
_FINAL_BEFORE_CAPITAL = frozenset("ecc etc c.a p.v spa srl snc sas coop".split())

# Letters with inner periods (final period excluded): "S.p.A", "a.s", "G.B", "ass.ne".
_DOTTED_RE = re.compile(r"^(?:[^\W\d_]+\.)+[^\W\d_]+$")
# A web address or host name: "www.comune.esempio.it", "comune.esempio.it", "sito.com".
_WEB_RE = re.compile(r"(?:^|\W)www\.|\.(?:it|com|org|net|eu|gov|info)$", re.I)
_CLOSERS = "\"”»’')]"
# A candidate end: terminal punctuation, optional closing quotes/brackets, then a space or
# the end of the line; or a period glued to the next sentence ("temporali.In allegato",
# from WordPress descriptions that strip <br> without a space).
_CANDIDATE_RE = re.compile(
    rf"[.!?…]+[{re.escape(_CLOSERS)}]*(?=\s|$)|(?<=[^\W\d_]{{3}})\.(?=[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ])"
)
_COMPLETE_RE = re.compile(rf"[.!?][{re.escape(_CLOSERS)}]*$")
_ELLIPSIS_END_RE = re.compile(rf"(?:\.\.|…)[{re.escape(_CLOSERS)}]*$")
# Unicode categories of emoji and their modifiers: symbols, marks, format characters.
_DECORATION = frozenset({"So", "Sk", "Mn", "Me", "Cf"})
_OPENERS = "([«“\"'‘"


def _token_before(line: str, end: int) -> str:
    """The word the punctuation at `end` is attached to, without opening brackets/quotes."""
    start = end
    while start > 0 and not line[start - 1].isspace():
        start -= 1
    token = line[start:end].lstrip(_OPENERS)
    # Elided articles and prepositions: "dell'art." is the abbreviation "art.".
    return re.split(r"['’]", token)[-1]


def _is_boundary(line: str, match: re.Match[str]) -> bool:
    """Decide whether the candidate `match` in `line` ends a sentence."""
    punct = match.group(0)
    rest = line[match.end() :].lstrip()
    if not rest:
        return True
    glued = match.end() < len(line) and not line[match.end()].isspace()
    token = _token_before(line, match.start())
    lowered = token.lower()
    if glued:
        # Only split "parola.Parola" between plain words, never inside "www.Sito" or a
        # dotted abbreviation ("Dott.Ssa" in shouted text).
        return (
            token.isalpha()
            and lowered not in _NEVER_FINAL
            and lowered not in _FINAL_BEFORE_CAPITAL
            and "/" not in token
            and "@" not in token
        )
    nxt = rest[0]
    if nxt.islower():
        return False  # "ecc. e", "S.p.A. per", "... e poi": the sentence goes on
    core = punct.rstrip(_CLOSERS)
    if "!" in core or "?" in core:
        # 'il progetto "Ci sto? Affare fatica!" 2026': a title with its own "!" goes on.
        return not nxt.isdigit()
    if core.startswith("…") or core.startswith(".."):
        return True
    if punct != core:
        return True  # "sicurezza.»" / "(ex Guardia Medica)." closes a quote, then a sentence
    if lowered in _NEVER_FINAL:
        return False
    if len(token) == 1 and token.isalpha():
        return False  # initials "G. Verdi", "S. Maria"
    if lowered in _FINAL_BEFORE_CAPITAL:
        return nxt.isupper()
    if "@" in token or _WEB_RE.search(token):
        return nxt.isupper()  # "sul sito www.comune.esempio.it. Le iscrizioni": an address ends it
    if _DOTTED_RE.match(token):
        parts = token.split(".")
        if any(len(part) > 1 for part in parts):
            return False  # contractions: "ass.ne", "Dott.ssa", "p.zza", "D.Lgs"
        if token.isupper():
            # Initials and acronyms: "Via G.B. Zonato", "il P.U.A. Piccola Tergola". Ending
            # a sentence here would cut one that goes on; missing a real end only makes a
            # sentence longer, which the length check handles.
            return False
        return nxt.isupper()  # "S.p.A.", "a.s.", "s.r.l." end a sentence before a capital
    return True


def _inside_brackets(segment: str) -> bool:
    """True when `segment` opens a quotation or parenthesis it does not close."""
    return (
        segment.count("“") > segment.count("”")
        or segment.count("«") > segment.count("»")
        or segment.count("(") > segment.count(")")
        or segment.count('"') % 2 == 1
    )


def split_sentences(text: str) -> list[str]:
    """Split plain text into sentences and fragments, in order, each stripped and non-empty.

    Every line break ends a segment; inside a line a segment ends after ".", "!", "?" or an
    ellipsis (plus closing quotes or brackets) unless the period belongs to an abbreviation
    ("art.", "n.", "Dott.", "p.zza", "D.Lgs.", an initial), a number ("ore 10.30"), or is
    followed by a lower-case word. "ecc." and dotted names like "S.p.A." end a sentence
    only before a capital. The concatenation of the segments is the text minus whitespace
    at the cut points: nothing is reworded.
    """
    segments: list[str] = []
    for line in text.split("\n"):
        pieces: list[str] = []
        start = 0
        for match in _CANDIDATE_RE.finditer(line):
            if match.end() <= start or not _is_boundary(line, match):
                continue
            if match.end() < len(line) and _inside_brackets(line[start : match.end()]):
                continue  # «... Affare fatica!» or (... ecc.) goes on inside the sentence
            pieces.append(line[start : match.end()])
            start = match.end()
        pieces.append(line[start:])
        line_segments: list[str] = []
        for piece in pieces:
            piece = piece.strip()
            if not piece:
                continue
            if line_segments and not any(c.isalnum() for c in piece):
                # An emoji or symbol after the punctuation belongs to the sentence before it
                # ("Sono aperte le iscrizioni!!! ⛱️").
                line_segments[-1] = f"{line_segments[-1]} {piece}"
            else:
                line_segments.append(piece)
        segments.extend(line_segments)
    return segments


def is_complete_sentence(segment: str) -> bool:
    """True when `segment` reads as a whole sentence usable verbatim in an alert.

    It ends with ".", "!" or "?" (optionally followed by closing quotes or brackets, then
    emoji or symbols), not
    with an ellipsis (feeds mark cut text with "..."), and has at least three words, or two
    of which one is a number ("15/08/2026 chiuso.").
    """
    # Decoration after the final punctuation ("iscrizioni!!! ⛱️") does not hide the end.
    core = segment.rstrip()
    while core and (unicodedata.category(core[-1]) in _DECORATION or core[-1].isspace()):
        core = core[:-1]
    if not _COMPLETE_RE.search(core) or _ELLIPSIS_END_RE.search(core):
        return False
    words = [w for w in segment.split() if any(c.isalnum() for c in w)]
    # Two words are a sentence when one is a number: "15/08/2026 chiuso." says a fact.
    return len(words) >= 3 or (len(words) == 2 and any(c.isdigit() for c in segment))
