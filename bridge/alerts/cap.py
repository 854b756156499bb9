"""CAP 1.2 (Common Alerting Protocol) read from bytes: a CAP document, an Atom or RSS feed of CAP
entries, or a zip holding a `Cap_*.xml` member (the Department's bulletin). Pure.

The XML is parsed by expat with every document type declaration refused: CAP has none, and
refusing them is what keeps out external entities and the nested-entity expansions of an
"XML bomb" (the standard library alone, no extra dependency: a CAP document has nothing a
DOCTYPE could legitimately add). A zip is read member by member with bounds on the size of
what is unpacked and on its compression ratio, whatever its headers claim.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any
from xml.etree import ElementTree
from xml.parsers import expat

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
ATOM_NS = "http://www.w3.org/2005/Atom"
CAP_TYPE = "application/cap+xml"

MAX_XML_BYTES = 16 * 1024 * 1024  # a CAP document is kilobytes; the bulletin's whole zip is ~5 MB
MAX_MEMBER_BYTES = 8 * 1024 * 1024
MAX_RATIO = 100  # XML compresses well, but not a hundred to one


class CapError(ValueError):
    """The bytes are not a CAP document this reader accepts; the message says what and where."""


@dataclass(frozen=True)
class Area:
    """One `<area>`: its description and its geocodes as (valueName, value) pairs."""

    description: str
    geocodes: tuple[tuple[str, str], ...] = ()

    def codes(self, value_name: str) -> tuple[str, ...]:
        """The geocode values under `value_name` (compared case-insensitively)."""
        wanted = value_name.casefold()
        return tuple(value for name, value in self.geocodes if name.casefold() == wanted)


@dataclass(frozen=True)
class Info:
    """One `<info>` block. `language` is "" when the document names none (the Department's)."""

    language: str
    event: str
    severity: str
    urgency: str
    certainty: str
    onset: datetime | None = None
    effective: datetime | None = None
    expires: datetime | None = None
    headline: str = ""
    description: str = ""
    web: str = ""
    sender_name: str = ""
    parameters: tuple[tuple[str, str], ...] = ()
    areas: tuple[Area, ...] = ()

    def parameter(self, name: str) -> str | None:
        """The first parameter value named `name` (case-insensitive), or None."""
        wanted = name.casefold()
        return next((value for key, value in self.parameters if key.casefold() == wanted), None)


@dataclass(frozen=True)
class Reference:
    """One entry of `<references>`: the alert an Update or Cancel replaces."""

    sender: str
    identifier: str
    sent: str


@dataclass(frozen=True)
class Alert:
    """One CAP `<alert>`."""

    identifier: str
    sender: str
    sent: datetime
    msg_type: str
    status: str = "Actual"
    references: tuple[Reference, ...] = ()
    note: str = ""
    infos: tuple[Info, ...] = ()


@dataclass(frozen=True)
class CapDocument:
    """What a source's bytes hold: the alerts in them, and the addresses of CAP documents a
    feed only links to (to fetch next)."""

    alerts: tuple[Alert, ...] = ()
    links: tuple[str, ...] = ()


def read_cap(data: bytes, *, where: str = "document") -> CapDocument:
    """Given the bytes of a CAP document, of an Atom/RSS feed of CAP entries or of a zip holding a
    `Cap_*.xml` member, return its alerts and links. Raise CapError naming `where` and the
    problem when the bytes are none of these, are malformed, or break a size bound."""
    if data[:4] == b"PK\x03\x04":
        return CapDocument(alerts=tuple(_alert(_parse_xml(member, f"{where}: {name}"), f"{where}: {name}")
                                        for name, member in _cap_members(data, where)))
    root = _parse_xml(data, where)
    if root.tag == f"{{{CAP_NS}}}alert":
        return CapDocument(alerts=(_alert(root, where),))
    if root.tag == f"{{{ATOM_NS}}}feed":
        return _feed(root.iter(f"{{{ATOM_NS}}}entry"), where, atom=True)
    if root.tag == "rss":
        return _feed(root.iter("item"), where, atom=False)
    if root.tag.endswith("}alert"):
        raise CapError(f"{where}: an alert of namespace {root.tag[1:].split('}')[0]}, not CAP 1.2 ({CAP_NS})")
    raise CapError(f"{where}: not CAP 1.2: the document is <{_local(root.tag)}>, expected <alert>, an Atom "
                   "feed, an RSS feed or a zip holding Cap_*.xml")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_xml(data: bytes, where: str) -> ElementTree.Element:
    if len(data) > MAX_XML_BYTES:
        raise CapError(f"{where}: {len(data)} bytes, more than the {MAX_XML_BYTES} a CAP document may have")
    builder = ElementTree.TreeBuilder()
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse_doctype(name: str, *_: object) -> None:
        raise CapError(f"{where}: a document type declaration (<!DOCTYPE {name}>) is refused: CAP has none")

    def refuse_entity(name: str, *_: object) -> None:
        raise CapError(f"{where}: an entity declaration ({name}) is refused: CAP has none")

    def start(name: str, attributes: dict[str, str]) -> None:
        builder.start("{" + name if "}" in name else name, attributes)

    def end(name: str) -> None:
        builder.end("{" + name if "}" in name else name)

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_entity
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = builder.data
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    try:
        parser.Parse(data, True)
    except expat.ExpatError as error:
        if re.match(rb"\s*<(!doctype\s+html|html)", data[:200], re.IGNORECASE):
            raise CapError(f"{where}: a web page (HTML), not a CAP document: check the address") from None
        raise CapError(f"{where}: not well-formed XML: {expat.ErrorString(error.code)} "
                       f"at line {error.lineno}, column {error.offset}") from None
    return builder.close()


def _cap_members(data: bytes, where: str) -> Iterator[tuple[str, bytes]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as error:
        raise CapError(f"{where}: not a readable zip ({error})") from None
    with archive:
        members = [info for info in archive.infolist()
                   if re.fullmatch(r"cap_.*\.xml", PurePosixPath(info.filename).name, re.IGNORECASE)]
        if not members:
            names = ", ".join(info.filename for info in archive.infolist()[:5]) or "nothing"
            raise CapError(f"{where}: the zip holds no Cap_*.xml member (it holds {names})")
        for info in members:
            if info.file_size > MAX_MEMBER_BYTES:
                raise CapError(f"{where}: {info.filename} unpacks to {info.file_size} bytes, "
                               f"more than {MAX_MEMBER_BYTES}")
            if info.file_size > MAX_RATIO * max(info.compress_size, 1):
                raise CapError(f"{where}: {info.filename} is compressed more than {MAX_RATIO} to 1: refused")
            # The headers may lie: the read itself is bounded.
            try:
                with archive.open(info) as member:
                    content = member.read(MAX_MEMBER_BYTES + 1)
            except (zipfile.BadZipFile, OSError, EOFError) as error:
                raise CapError(f"{where}: {info.filename} cannot be unpacked ({error})") from None
            if len(content) > MAX_MEMBER_BYTES:
                raise CapError(f"{where}: {info.filename} unpacks to more than {MAX_MEMBER_BYTES} bytes")
            yield info.filename, content


def _feed(entries: Iterator[ElementTree.Element], where: str, *, atom: bool) -> CapDocument:
    alerts: list[Alert] = []
    links: list[str] = []
    for number, entry in enumerate(entries, start=1):
        embedded = list(entry.iter(f"{{{CAP_NS}}}alert"))
        if embedded:
            alerts.extend(_alert(element, f"{where}: entry {number}") for element in embedded)
            continue
        link = _entry_link(entry, atom=atom)
        if link:
            links.append(link)
    return CapDocument(alerts=tuple(alerts), links=tuple(links))


def _entry_link(entry: ElementTree.Element, *, atom: bool) -> str:
    """A CAP-typed link of the entry, else its main link."""
    if atom:
        candidates = entry.findall(f"{{{ATOM_NS}}}link")
        typed = [link.get("href", "") for link in candidates if link.get("type", "").casefold() == CAP_TYPE]
        plain = [link.get("href", "") for link in candidates if link.get("rel", "alternate") == "alternate"]
    else:
        typed = [enclosure.get("url", "") for enclosure in entry.findall("enclosure")
                 if enclosure.get("type", "").casefold() == CAP_TYPE]
        plain = [(element.text or "").strip() for element in entry.findall("link")]
    return next((link.strip() for link in [*typed, *plain] if link.strip()), "")


def _text(element: ElementTree.Element, name: str) -> str:
    child = element.find(f"{{{CAP_NS}}}{name}")
    return (child.text or "").strip() if child is not None else ""


def parse_instant(text: str, where: str) -> datetime | None:
    """A CAP date-time ("2026-07-30T15:11:00+02:00") as an aware datetime; None for "". Raise
    CapError when it is not one or has no offset (CAP requires it)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise CapError(f'{where}: "{text}" is not a CAP date-time') from None
    if moment.tzinfo is None:
        raise CapError(f'{where}: "{text}" has no time-zone offset')
    return moment


def parse_references(text: str) -> tuple[Reference, ...]:
    """`<references>`: space-separated "sender,identifier,sent" triples; malformed ones are skipped."""
    found = []
    for triple in text.split():
        parts = triple.split(",")
        if len(parts) == 3 and parts[1]:
            found.append(Reference(*parts))
    return tuple(found)


def _alert(element: ElementTree.Element, where: str) -> Alert:
    if element.tag != f"{{{CAP_NS}}}alert":
        raise CapError(f"{where}: <{_local(element.tag)}> is not a CAP 1.2 alert")
    return alert_from_fields({
        "identifier": _text(element, "identifier"),
        "sender": _text(element, "sender"),
        "sent": _text(element, "sent"),
        "msgType": _text(element, "msgType"),
        "status": _text(element, "status"),
        "references": _text(element, "references"),
        "note": _text(element, "note"),
        "info": [_info_fields(info) for info in element.findall(f"{{{CAP_NS}}}info")],
    }, where)


def _info_fields(info: ElementTree.Element) -> dict[str, Any]:
    names = ("language", "event", "severity", "urgency", "certainty", "onset", "effective", "expires",
             "headline", "description", "web", "senderName")
    fields: dict[str, Any] = {name: _text(info, name) for name in names}
    fields["parameter"] = [{"valueName": _text(p, "valueName"), "value": _text(p, "value")}
                           for p in info.findall(f"{{{CAP_NS}}}parameter")]
    fields["area"] = [{"areaDesc": _text(area, "areaDesc"),
                       "geocode": [{"valueName": _text(g, "valueName"), "value": _text(g, "value")}
                                   for g in area.findall(f"{{{CAP_NS}}}geocode")]}
                      for area in info.findall(f"{{{CAP_NS}}}area")]
    return fields


def alert_from_fields(fields: Mapping[str, Any], where: str) -> Alert:
    """An Alert from CAP's fields by their CAP names (as the XML has them, or as a JSON rendering
    of CAP such as Meteoalarm's has them). Raise CapError when a required one is missing or bad."""
    missing = [name for name in ("identifier", "sender", "sent") if not _string(fields.get(name))]
    if missing:
        raise CapError(f"{where}: not a CAP alert: no {', '.join(missing)}")
    identifier = _string(fields.get("identifier"))
    place = f"{where}: alert {identifier}"
    sent = parse_instant(_string(fields.get("sent")), f"{place}: sent")
    assert sent is not None
    infos = fields.get("info") or []
    if not isinstance(infos, Sequence) or isinstance(infos, str):
        raise CapError(f"{place}: info is not a list")
    return Alert(identifier=identifier, sender=_string(fields.get("sender")), sent=sent,
                 msg_type=_string(fields.get("msgType")) or "Alert", status=_string(fields.get("status")) or "Actual",
                 references=parse_references(_string(fields.get("references"))), note=_string(fields.get("note")),
                 infos=tuple(_info(info, f"{place}: info {n}") for n, info in enumerate(infos, start=1)))


def _string(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _pairs(items: object, where: str) -> tuple[tuple[str, str], ...]:
    if items is None:
        return ()
    if isinstance(items, Mapping):
        items = [items]
    if not isinstance(items, Sequence) or isinstance(items, str):
        raise CapError(f"{where}: expected a list of valueName/value pairs")
    pairs = []
    for item in items:
        if not isinstance(item, Mapping):
            raise CapError(f"{where}: expected valueName/value, got {type(item).__name__}")
        pairs.append((_string(item.get("valueName")), _string(item.get("value"))))
    return tuple(pairs)


def _info(fields: object, where: str) -> Info:
    if not isinstance(fields, Mapping):
        raise CapError(f"{where}: not an info block")
    areas = fields.get("area") or []
    if not isinstance(areas, Sequence) or isinstance(areas, str):
        raise CapError(f"{where}: area is not a list")
    return Info(
        language=_string(fields.get("language")), event=_string(fields.get("event")),
        severity=_string(fields.get("severity")), urgency=_string(fields.get("urgency")),
        certainty=_string(fields.get("certainty")),
        onset=parse_instant(_string(fields.get("onset")), f"{where}: onset"),
        effective=parse_instant(_string(fields.get("effective")), f"{where}: effective"),
        expires=parse_instant(_string(fields.get("expires")), f"{where}: expires"),
        headline=_string(fields.get("headline")), description=_string(fields.get("description")),
        web=_string(fields.get("web")), sender_name=_string(fields.get("senderName")),
        parameters=_pairs(fields.get("parameter"), f"{where}: parameter"),
        areas=tuple(Area(description=_string(area.get("areaDesc")) if isinstance(area, Mapping) else "",
                         geocodes=_pairs(area.get("geocode"), f"{where}: geocode") if isinstance(area, Mapping)
                         else ())
                    for area in areas),
    )
