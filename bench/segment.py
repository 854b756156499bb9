"""Italian sentence segmentation measured on a table of tricky sentences (a benchmark, not a test).

Usage: .venv/bin/python bench/segment.py [--show]

Each row of `TABLE` is the list of sentences a reader would see; the text given to a
segmenter is the sentences joined by one space. A *false split* is a cut inside a sentence
(the costly error: an alert would end at "art." or "ore 10."), a *missed split* a boundary
not found (harmless for an alert: the sentence is just longer, and the length check
decides). Three candidates:

- ``rules``: `bridge.sentences.split_sentences`, the project's own rules;
- ``pysbd``: pysbd's Italian rules alone (optional: skipped if pysbd is not installed);
- ``pysbd+merge``: pysbd, then a merge layer that glues back a pysbd cut where the project's
  rules say the period is not a boundary (abbreviation, number, lower-case next word).

Prints, per candidate: boundaries, false splits, missed splits, microseconds per row, and
with ``--show`` every wrong row.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable

from bridge.sentences import split_sentences

# Each row: the sentences, in order. Every abbreviation of issue 4 appears at least once
# inside a sentence (must not split) and, where it can end one, at a sentence end.
TABLE: list[list[str]] = [
    ["Ai sensi dell'art. 5 del regolamento si comunica la chiusura.", "Gli uffici riaprono lunedì."],
    ["Visti gli artt. 107 e 109 del TUEL è approvato il bando.", "Le domande entro maggio."],
    ["Con delibera n. 45 del consiglio comunale è stato approvato il bilancio.", "Info in Comune."],
    ["Sono disponibili nn. 3 posti per il servizio civile.", "Domande entro il 30 aprile."],
    ["Riceve il Dott. Rossi ogni martedì.", "Prenotazione obbligatoria."],
    ["Interviene la Sig.ra Bianchi per l'associazione.", "Ingresso libero."],
    ["Relatore il Prof. Gialli dell'Università di Padova.", "Segue dibattito."],
    ["Assiste l'Avv. Neri per il Comune.", "La seduta è pubblica."],
    ["Il progetto è firmato dall'Ing. Rosa.", "I lavori partono a settembre."],
    ["Ritrovo in p.zza Garibaldi alle ore 9.", "Si raccomanda la puntualità."],
    ["Chiuso il tratto di v.le Roma tra i civici 10 e 20.", "Deviazioni segnalate."],
    ["Mercato in loc. Ponte di Costozza.", "Parcheggio gratuito."],
    ["Festa in fraz. Madonna dei Prati.", "Stand gastronomici aperti."],
    ["Processione verso la chiesa di S. Maria Assunta.", "Segue rinfresco."],
    ["Il servizio è gestito da Viacqua S.p.A. per conto del Comune.", "Info al numero verde."],
    ["La gestione passa ad AIM S.p.A.", "Il contratto dura tre anni."],
    ["Domande entro il 30 settembre c.a. presso l'URP.", "Moduli online."],
    ["Il termine scade il 31 dicembre c.a.", "Non sono ammesse proroghe."],
    ["La riunione si terrà il 10 ottobre p.v. in sala consiliare.", "Ingresso libero."],
    ["Entro il 30 settembre p.v.", "Le domande si presentano in Comune."],
    ["Portare documenti, fotografie ecc. allo sportello.", "Apertura dalle 9."],
    ["Servono libri, quaderni, penne ecc.", "Il kit è gratuito."],
    ["Ai sensi del D.Lgs. 50/2016 la gara è aperta.", "Scadenza il 15 maggio."],
    ["Secondo il D.P.R. 445/2000 vale l'autocertificazione.", "Moduli allo sportello."],
    ["Per informazioni tel. 0444 660223 in orario d'ufficio.", "Email sul sito."],
    ["Il consiglio si riunisce alle ore 10.30 in municipio.", "Seduta pubblica."],
    ["La seduta del 12.10.2024 è rinviata.", "Nuova data da definire."],
    ["Contributo fino a 1.500 euro per famiglia.", "Domande online."],
    ["È previsto un rimborso di € 2.000,50 per i richiedenti.", "Bando sul sito."],
    ["Libro di G. Verdi presentato in biblioteca.", "Ingresso libero."],
    ["Partenza da Via G.B. Zonato alle 8.", "Arrivo in piazza."],
    ["Il sindaco: «Un intervento atteso. Grazie a tutti.»", "I lavori finiscono a giugno."],
    ['Progetto "Ci sto? Affare fatica!" 2026: aperte le iscrizioni.', "Iscriviti subito!"],
    ["Servizio di continuità assistenziale (ex Guardia Medica).", "Chiamare il 116117."],
    ["Allerta meteo per temporali!", "Prestare attenzione.", "Evitare i sottopassi?"],
    ["Nell'a.s. 2026/2027 cambia l'orario.", "Le lezioni iniziano alle 8."],
    ["Il bando (art. 3, c. 2) scade a maggio.", "Info in Comune."],
    ["L'orario è 8.30-12.30 dal lunedì al venerdì.", "Il sabato chiuso."],
    ["Sito www.comune.esempio.it per gli aggiornamenti.", "Seguici sui social."],
    ["Approvato il P.U.A. Piccola Tergola con delibera.", "Osservazioni entro 30 giorni."],
    ["Il documento è disponibile sul sito istituzionale.", "Le osservazioni vanno inviate via PEC."],
    ["Presso la sede della Ditta Rossi S.r.l. in via Roma.", "Orari di apertura invariati."],
    # Rows added after the rules were written, from real-looking leads that end a sentence on
    # a token the rules treat with suspicion (numbers after "art.", sites, e-mails, initials).
    ["Lo prevede l'art. 12.", "Le domande vanno presentate entro giugno."],
    ["Tutte le informazioni sono sul sito www.comune.esempio.it.", "Le iscrizioni aprono lunedì."],
    ["Scrivere a protocollo@comune.esempio.it.", "Risposta entro 3 giorni."],
    ["La palestra è intitolata a Giovanni Paolo II.", "La cerimonia è alle 11."],
    ["Il vaccino protegge dall'epatite B.", "Prenotazioni al CUP."],
    ["Ritrovo alle ore 8.", "Pranzo al sacco."],
    ["Costo del biglietto 5 euro.", "Ridotto 3 euro per i minori."],
    ["Aperto il punto vaccinale in via S. Bortolo n. 12.", "Orari sul sito."],
    ["Rilasciata la CIE a 1.200 cittadini nel 2025.", "Il servizio continua su appuntamento."],
]


def _key(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _boundaries(segments: list[str]) -> set[int]:
    """Cut positions, counted in non-space characters, so spacing does not matter."""
    cuts: set[int] = set()
    position = 0
    for segment in segments[:-1]:
        position += len(_key(segment))
        cuts.add(position)
    return cuts


def _pysbd() -> Callable[[str], list[str]] | None:
    try:
        import pysbd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    segmenter = pysbd.Segmenter(language="it", clean=False)

    def split(text: str) -> list[str]:
        return [s.strip() for s in segmenter.segment(text) if s.strip()]

    return split


def _merged(split: Callable[[str], list[str]]) -> Callable[[str], list[str]]:
    """pysbd plus a merge layer: undo a cut where the project's rules see no boundary."""

    def merged(text: str) -> list[str]:
        out: list[str] = []
        for segment in split(text):
            if out and len(split_sentences(f"{out[-1]} {segment}")) == 1:
                out[-1] = f"{out[-1]} {segment}"
            else:
                out.append(segment)
        return out

    return merged


def measure(name: str, split: Callable[[str], list[str]], show: bool) -> None:
    """Print boundaries, false and missed splits and speed of `split` over `TABLE`."""
    total = false = missed = 0
    wrong: list[tuple[list[str], list[str]]] = []
    start = time.perf_counter()
    results = [split(" ".join(row)) for row in TABLE]
    elapsed = time.perf_counter() - start
    for row, got in zip(TABLE, results, strict=True):
        expected_cuts = _boundaries(row)
        got_cuts = _boundaries(got)
        total += len(expected_cuts)
        false += len(got_cuts - expected_cuts)
        missed += len(expected_cuts - got_cuts)
        if got_cuts != expected_cuts:
            wrong.append((row, got))
    per_row = 1e6 * elapsed / len(TABLE)
    print(f"{name:<12} boundaries {total}  false splits {false}  missed splits {missed}  {per_row:.0f} µs/row")
    if show:
        for row, got in wrong:
            print(f"    expected {row}\n    got      {got}")


def main(argv: list[str]) -> int:
    show = "--show" in argv
    print(f"rows: {len(TABLE)}")
    measure("rules", split_sentences, show)
    pysbd_split = _pysbd()
    if pysbd_split is None:
        print("pysbd        not installed: skipped")
        return 0
    measure("pysbd", pysbd_split, show)
    measure("pysbd+merge", _merged(pysbd_split), show)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
