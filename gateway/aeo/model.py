"""The canonical AEO list as Python values: parse, build, diff, and status as of a date.

Pure (bytes and dataclasses only), so the rules that decide whether a foreign operator gets
MRA benefits on a given day are tested without a database.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from lxml import etree

from partners.documents import AEO_NS, parse_document, validate_tree

FULL, DELTA = "FULL", "DELTA"
UPSERT, DELETE = "UPSERT", "DELETE"
_NS = {"a": AEO_NS}


@dataclass(frozen=True)
class Address:
    country: str
    line: str | None = None
    city: str | None = None
    postcode: str | None = None


@dataclass(frozen=True)
class Suspension:
    start: dt.date
    end: dt.date | None = None
    reason: str | None = None

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Operator:
    """One operator's AEO record as the issuing administration states it."""
    operator_id: str
    scheme: str
    name: str
    address: Address
    certificate_type: str
    status: str                       # VALID, SUSPENDED, REVOKED, EXPIRED
    valid_from: dt.date
    valid_to: dt.date | None = None
    suspensions: tuple[Suspension, ...] = ()


@dataclass(frozen=True)
class Change:
    action: str                       # UPSERT or DELETE
    operator_id: str
    scheme: str
    record: Operator | None           # None for DELETE


@dataclass(frozen=True)
class AeoList:
    list_id: str
    list_type: str                    # FULL or DELTA
    issuing_country: str
    authority: str
    issued_at: dt.datetime
    based_on: str | None = None
    mra_reference: str | None = None
    changes: tuple[Change, ...] = field(default=())


# -- status ------------------------------------------------------------------------
VALID, SUSPENDED, REVOKED, EXPIRED, NOT_YET_VALID, UNKNOWN = (
    "valid", "suspended", "revoked", "expired", "not-yet-valid", "unknown")


def status_on(op: Operator | None, day: dt.date) -> str:
    """Whether ``op`` enjoys AEO recognition on ``day``.

    Revocation wins over everything; then the validity window; then suspension periods (a
    SUSPENDED record without periods counts as suspended on any day in its validity).
    """
    if op is None:
        return UNKNOWN
    if op.status == REVOKED.upper():
        return REVOKED
    if day < op.valid_from:
        return NOT_YET_VALID
    if (op.valid_to is not None and day > op.valid_to) or op.status == EXPIRED.upper():
        return EXPIRED
    if any(s.covers(day) for s in op.suspensions):
        return SUSPENDED
    if op.status == SUSPENDED.upper() and not op.suspensions:
        return SUSPENDED
    return VALID


# -- parse ---------------------------------------------------------------------------
def _text(el: etree._Element, path: str) -> str | None:
    value = el.findtext(path, namespaces=_NS)
    return value.strip() if value is not None else None


def _date(value: str | None) -> dt.date | None:
    return dt.date.fromisoformat(value[:10]) if value else None


def _datetime(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


def parse_list(xml_bytes: bytes) -> AeoList:
    """Validate (canonical schema and rules) and parse an AEO list; DocumentInvalid if it is not one."""
    tree = parse_document("aeo", xml_bytes)
    validate_tree("aeo", tree)
    root = tree.getroot()
    header = root.find("a:Header", _NS)
    changes = []
    for el in root.iterfind("a:Operator", _NS):
        action = _text(el, "a:ActionCode") or UPSERT
        oid = el.find("a:OperatorID", _NS)
        record = None
        if action == UPSERT:
            addr = el.find("a:Address", _NS)
            record = Operator(
                operator_id=oid.text.strip(), scheme=oid.get("schemeID"), name=_text(el, "a:Name"),
                address=Address(country=_text(addr, "a:CountryID"), line=_text(addr, "a:LineOne"),
                                city=_text(addr, "a:CityName"), postcode=_text(addr, "a:PostcodeCode")),
                certificate_type=_text(el, "a:CertificateTypeCode"), status=_text(el, "a:StatusCode"),
                valid_from=_date(_text(el, "a:ValidFromDate")), valid_to=_date(_text(el, "a:ValidToDate")),
                suspensions=tuple(Suspension(_date(_text(s, "a:StartDate")), _date(_text(s, "a:EndDate")),
                                             _text(s, "a:Reason")) for s in el.iterfind("a:Suspension", _NS)))
        changes.append(Change(action, oid.text.strip(), oid.get("schemeID"), record))
    return AeoList(list_id=_text(header, "a:ListID"), list_type=_text(header, "a:ListTypeCode"),
                   issuing_country=_text(header, "a:IssuingCountryID"),
                   authority=_text(header, "a:IssuingAuthorityName"),
                   issued_at=_datetime(_text(header, "a:IssueDateTime")),
                   based_on=_text(header, "a:BasedOnListID"), mra_reference=_text(header, "a:MRAReference"),
                   changes=tuple(changes))


# -- build ---------------------------------------------------------------------------
def _sub(parent: etree._Element, name: str, text: str | None = None, **attrs) -> etree._Element:
    el = etree.SubElement(parent, f"{{{AEO_NS}}}{name}", **attrs)
    if text is not None:
        el.text = text
    return el


def _operator_xml(parent: etree._Element, change: Change, with_action: bool) -> None:
    el = _sub(parent, "Operator")
    if with_action:
        _sub(el, "ActionCode", change.action)
    _sub(el, "OperatorID", change.operator_id, schemeID=change.scheme)
    op = change.record
    if op is None:
        return
    _sub(el, "Name", op.name)
    addr = _sub(el, "Address")
    for tag, value in (("LineOne", op.address.line), ("CityName", op.address.city),
                       ("PostcodeCode", op.address.postcode)):
        if value:
            _sub(addr, tag, value)
    _sub(addr, "CountryID", op.address.country)
    _sub(el, "CertificateTypeCode", op.certificate_type)
    _sub(el, "StatusCode", op.status)
    _sub(el, "ValidFromDate", op.valid_from.isoformat())
    if op.valid_to:
        _sub(el, "ValidToDate", op.valid_to.isoformat())
    for s in op.suspensions:
        sus = _sub(el, "Suspension")
        _sub(sus, "StartDate", s.start.isoformat())
        if s.end:
            _sub(sus, "EndDate", s.end.isoformat())
        if s.reason:
            _sub(sus, "Reason", s.reason)


def build_list(aeo_list: AeoList) -> bytes:
    """Serialise to the canonical AEO document (validated before it is returned)."""
    root = etree.Element(f"{{{AEO_NS}}}AEOOperatorList", nsmap={"aeo": AEO_NS})
    header = _sub(root, "Header")
    _sub(header, "ListID", aeo_list.list_id)
    _sub(header, "ListTypeCode", aeo_list.list_type)
    if aeo_list.based_on:
        _sub(header, "BasedOnListID", aeo_list.based_on)
    _sub(header, "IssuingCountryID", aeo_list.issuing_country)
    _sub(header, "IssuingAuthorityName", aeo_list.authority)
    _sub(header, "IssueDateTime", aeo_list.issued_at.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if aeo_list.mra_reference:
        _sub(header, "MRAReference", aeo_list.mra_reference)
    for change in aeo_list.changes:
        _operator_xml(root, change, aeo_list.list_type == DELTA)
    etree.indent(root)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate_tree("aeo", etree.ElementTree(etree.fromstring(data)))
    return data


def full_list(operators: list[Operator], *, list_id: str, issuing_country: str, authority: str,
              issued_at: dt.datetime, mra_reference: str | None = None) -> AeoList:
    changes = tuple(Change(UPSERT, o.operator_id, o.scheme, o) for o in sorted(operators, key=lambda o: o.operator_id))
    return AeoList(list_id, FULL, issuing_country, authority, issued_at, None, mra_reference, changes)


def delta_list(previous: list[Operator], current: list[Operator], *, list_id: str, based_on: str,
               issuing_country: str, authority: str, issued_at: dt.datetime,
               mra_reference: str | None = None) -> AeoList:
    """The changes that turn ``previous`` (what the partner holds) into ``current``."""
    before = {o.operator_id: o for o in previous}
    after = {o.operator_id: o for o in current}
    changes = [Change(DELETE, oid, before[oid].scheme, None) for oid in sorted(before.keys() - after.keys())]
    changes += [Change(UPSERT, oid, op.scheme, op) for oid, op in sorted(after.items()) if before.get(oid) != op]
    return AeoList(list_id, DELTA, issuing_country, authority, issued_at, based_on, mra_reference, tuple(changes))
