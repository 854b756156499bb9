"""CAP 1.2 read from bytes: the real DPC and Meteoalarm documents, feeds of CAP entries, the
Department's zip, and what is refused (not CAP, a DOCTYPE bomb, an external entity, a zip bomb)."""

from __future__ import annotations

import io
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bridge.alerts import cap
from bridge.alerts.cap import CapError, read_cap

SHARED = Path(__file__).parents[2] / "shared" / "alerts"
FIXTURES = Path(__file__).parent / "fixtures" / "alerts" / "official"


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def test_the_real_dpc_bulletin_is_read_whole() -> None:
    document = read_cap((SHARED / "02_dpc_cap_Cap_20260730_1511.xml").read_bytes())
    assert document.links == ()
    (alert,) = document.alerts
    assert (alert.identifier, alert.sender) == ("DPC_BULLETIN_2026_07_30_5050", "2.49.0.0.380.1")
    assert alert.msg_type == "Alert"
    assert alert.sent == datetime(2026, 7, 30, 13, 11, tzinfo=UTC)
    (info,) = alert.infos
    assert info.language == ""  # the Department names none
    assert info.event == "ORDINARIA CRITICITA' PER RISCHIO TEMPORALI / ALLERTA GIALLA:"
    assert (info.severity, info.urgency, info.certainty) == ("Moderate", "Expected", "Likely")
    assert info.onset == datetime(2026, 7, 30, 22, 0, tzinfo=UTC)
    assert info.expires == datetime(2026, 7, 31, 21, 59, 59, tzinfo=UTC)
    assert info.description == "all_GIALLA PER DOMANI SU:"
    (area,) = info.areas
    assert area.description == "Provincia Autonoma di Bolzano"
    assert area.codes("zona di allerta") == ("Tren-A",)


def test_an_update_carries_its_references_and_both_languages() -> None:
    (alert,) = read_cap((SHARED / "09_meteoalarm_FR_cap_update_with_references.xml").read_bytes()).alerts
    assert alert.msg_type == "Update"
    (reference,) = alert.references
    assert reference.identifier == "2.49.0.0.250.0.FR.20221206160108.315028"
    assert reference.sender == "vigilance@meteo.fr"
    assert [info.language for info in alert.infos] == ["fr-FR", "en-GB"]
    assert alert.infos[1].parameter("AWARENESS_LEVEL") is not None


def test_the_bulletin_zip_gives_its_cap_member_only() -> None:
    content = (SHARED / "02_dpc_cap_Cap_20260730_1511.xml").read_bytes()
    data = _zip({"20260730_1511.json": b"{}", "pdf/bollettino.pdf": b"%PDF", "xml/Cap_20260730_1511.xml": content})
    (alert,) = read_cap(data, where="https://example.org/all.zip").alerts
    assert alert.identifier == "DPC_BULLETIN_2026_07_30_5050"


def test_a_zip_without_cap_member_is_named() -> None:
    with pytest.raises(CapError, match=r"bulletin\.zip: the zip holds no Cap_\*\.xml member \(it holds a\.json\)"):
        read_cap(_zip({"a.json": b"{}"}), where="bulletin.zip")


def test_a_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    bomb = _zip({"Cap_1.xml": b" " * (20 * 1024 * 1024)})
    assert len(bomb) < 100_000
    with pytest.raises(CapError, match=r"Cap_1\.xml unpacks to 20971520 bytes"):
        read_cap(bomb)


def test_a_member_compressed_beyond_the_ratio_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cap, "MAX_MEMBER_BYTES", 64 * 1024 * 1024)
    with pytest.raises(CapError, match="compressed more than 100 to 1"):
        read_cap(_zip({"Cap_1.xml": b"<alert/>" + b" " * (2 * 1024 * 1024)}))


def test_a_member_whose_header_lies_is_cut_at_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    # Stored (not compressed): the ratio is 1; the header says 3000 bytes, the bound is 1000.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("Cap_1.xml", b"x" * 3000)
    monkeypatch.setattr(cap, "MAX_MEMBER_BYTES", 1000)
    with pytest.raises(CapError, match="unpacks to 3000 bytes, more than 1000"):
        read_cap(buffer.getvalue())


def test_a_broken_zip_is_named() -> None:
    with pytest.raises(CapError, match="not a readable zip"):
        read_cap(b"PK\x03\x04" + b"\x00" * 40, where="all.zip")


@pytest.mark.parametrize(("name", "message"), [
    ("doctype_bomb.xml", r"doctype_bomb\.xml: a document type declaration \(<!DOCTYPE alert>\) is refused"),
    ("external_entity.xml", r"a document type declaration \(<!DOCTYPE alert>\) is refused"),
    ("not_cap.html", r"not_cap\.html: a web page \(HTML\), not a CAP document"),
    ("not_cap.xml", r"not CAP 1\.2: the document is <bollettino>"),
])
def test_what_is_not_cap_is_refused_with_its_place(name: str, message: str) -> None:
    with pytest.raises(CapError, match=message):
        read_cap((FIXTURES / name).read_bytes(), where=name)


@pytest.mark.parametrize(("data", "message"), [
    (b"", "not well-formed XML"),
    (b"<alert", "not well-formed XML: .* at line 1"),
    (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.1"/>',
     r"namespace urn:oasis:names:tc:emergency:cap:1\.1, not CAP 1\.2"),
    (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><sender>s</sender></alert>',
     "not a CAP alert: no identifier, sent"),
    (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a</identifier><sender>s</sender>'
     b"<sent>ieri</sent></alert>", 'alert a: sent: "ieri" is not a CAP date-time'),
    (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a</identifier><sender>s</sender>'
     b"<sent>2026-01-18T15:00:00</sent></alert>", "has no time-zone offset"),
    (b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>a</identifier><sender>s</sender>'
     b"<sent>2026-01-18T15:00:00Z</sent><info><expires>domani</expires></info></alert>", "alert a: info 1: expires"),
])
def test_malformed_cap_is_named(data: bytes, message: str) -> None:
    with pytest.raises(CapError, match=message):
        read_cap(data)


def test_an_oversized_document_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cap, "MAX_XML_BYTES", 100)
    with pytest.raises(CapError, match="more than the 100 a CAP document may have"):
        read_cap(b"<alert>" + b" " * 200 + b"</alert>")


def test_an_atom_feed_gives_its_embedded_alerts_and_the_cap_links_to_fetch() -> None:
    document = read_cap((FIXTURES / "cap_atom_feed.xml").read_bytes())
    assert [alert.identifier for alert in document.alerts] == ["REGIONAL_2026_01_18_1530"]
    assert document.alerts[0].infos[0].language == "it-IT"
    assert document.links == ("https://cap.example.org/allerta/2.xml",)


def test_an_rss_feed_gives_its_links() -> None:
    assert read_cap((FIXTURES / "cap_rss_feed.xml").read_bytes()).links == ("https://cap.example.org/allerta/3.xml",)


def test_references_skip_what_is_not_a_triple() -> None:
    assert [r.identifier for r in cap.parse_references("s,a,2026 broken s,b,2027 ,,")] == ["a", "b"]
