"""Article-page lead extraction: bs4 rules vs readability-lxml vs trafilatura (a benchmark).

Usage: python bench/article.py
(readability-lxml and trafilatura are optional: not project dependencies; a candidate
whose package is missing is skipped. Run with a Python that has them to compare.)

The pages are tests/fixtures/articles/*.html, modelled on the CMS shapes of comune sites
(Design Comuni WordPress and Drupal, OpenCity, MyPortal, Plone, a generic WordPress
theme). For each page `EXPECTED` is the first sentence a reader would call the lead. A
candidate passes a page when the first sentence of its lead is that sentence. Prints
passes and milliseconds per page per candidate.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from bridge.article import extract_lead
from bridge.sentences import is_complete_sentence, split_sentences
from bridge.text import html_to_text

PAGES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "articles"
EXPECTED = {
    "drupal_design_comuni": "Il bollettino della Regione prevede temperature fino a 38 gradi da venerdì 14 a "
    "domenica 16 agosto.",
    "myportal": "Si informa la cittadinanza che dal mese di settembre gli ispettori incaricati dalla Provincia "
    "effettueranno i controlli sugli impianti termici civili.",
    "opencity": "Si sono conclusi i lavori per l’installazione di 14 nuovi punti luce a led nelle vie del quartiere "
    "di Saviabona, per una spesa complessiva di 85.000 euro.",
    "plone": "Ordinanza del Sindaco per limitare l'uso dell'acqua potabile fino al 30 settembre.",
    "wordpress_design_comuni": "Dal 10 al 14 agosto 2026 via Roma resta chiusa al traffico dalle ore 7.30 alle 18.00 "
    "per il rifacimento dell’asfalto.",
    "wordpress_generic": "Dal 12 al 18 agosto torna la Sagra dell’Assunta in piazza con stand gastronomici, musica "
    "dal vivo e il tradizionale palio delle contrade che quest’anno festeggia la sua ventesima edizione.",
}


def first_real_sentence(text: str) -> str:
    """The first whole sentence of at least six words in `text` (paragraphs by line)."""
    for sentence in split_sentences(text):
        if is_complete_sentence(sentence) and len(sentence.split()) >= 6:
            return sentence
    return ""


def readability_lead(page: str) -> str:
    from readability import Document  # type: ignore[import-not-found,unused-ignore]

    return first_real_sentence(html_to_text(Document(page).summary()))


def trafilatura_lead(page: str) -> str:
    import trafilatura  # type: ignore[import-not-found,unused-ignore]

    return first_real_sentence(trafilatura.extract(page, favor_precision=True) or "")


def bs4_lead(page: str) -> str:
    return first_real_sentence(extract_lead(page))


def main() -> int:
    pages = {path.stem: path.read_text(encoding="utf-8") for path in sorted(PAGES.glob("*.html"))}
    candidates: list[tuple[str, Callable[[str], str]]] = [("bs4 rules", bs4_lead)]
    for name, module, function in (
        ("readability", "readability", readability_lead),
        ("trafilatura", "trafilatura", trafilatura_lead),
    ):
        try:
            __import__(module)
        except ImportError:
            print(f"{name:<12} not installed: skipped")
            continue
        candidates.append((name, function))
    for name, function in candidates:
        passed = 0
        start = time.perf_counter()
        misses = []
        for stem, page in pages.items():
            got = function(page)
            if got == EXPECTED[stem]:
                passed += 1
            else:
                misses.append(f"    {stem}: {got[:90]!r}")
        per_page = 1000 * (time.perf_counter() - start) / len(pages)
        print(f"{name:<12} {passed}/{len(pages)} leads right  {per_page:.1f} ms/page")
        print("\n".join(misses)) if misses else None
    return 0


if __name__ == "__main__":
    sys.exit(main())
