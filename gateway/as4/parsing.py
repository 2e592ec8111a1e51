"""Strict parsing of received SOAP 1.2 / ebMS 3.0 envelopes into the model.

Every structural problem becomes an :class:`EbmsException` whose code follows ebMS 3.0
Core sec 6.7 and whose description names the offending element, so that the partner's
operator can fix their side without asking us. The input is an already-parsed tree
(see :func:`gateway.as4.xmlparse.parse_xml`); nothing here touches signatures or
encryption, which is why the body is returned but not interpreted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from .errors import EbmsException
from .model import (
    SEVERITY_FAILURE,
    SEVERITY_WARNING,
    EbmsError,
    ErrorSignal,
    PartInfo,
    Party,
    PartyId,
    Property,
    Receipt,
    UserMessage,
)
from .namespaces import EBMS_NS, SOAP11_NS, SOAP12_NS, WSU_ID, ds, eb, ebbp, env
from .timestamps import parse_timestamp

__all__ = ["ParsedEnvelope", "parse_envelope", "parse_user_message"]

INVALID_HEADER = "EBMS:0009"
FEATURE_NOT_SUPPORTED = "EBMS:0002"
EXTERNAL_PAYLOAD = "EBMS:0011"
INVALID_RECEIPT = "EBMS:0302"


@dataclass(frozen=True, eq=False)
class ParsedEnvelope:
    """What a received envelope carries; exactly one of user_message/receipt/error_signal
    is usually set (a signal may carry both a receipt and errors)."""

    user_message: UserMessage | None
    receipt: Receipt | None
    nri_references: tuple[etree._Element, ...]
    error_signal: ErrorSignal | None
    messaging: etree._Element
    body: etree._Element
    envelope: etree._Element
    header: etree._Element

    @property
    def messaging_id(self) -> str | None:
        """``wsu:Id`` of eb:Messaging (what the signature should reference)."""
        return self.messaging.get(WSU_ID)

    @property
    def body_id(self) -> str | None:
        """``wsu:Id`` of env:Body."""
        return self.body.get(WSU_ID)


def _fail(description: str, code: str = INVALID_HEADER) -> EbmsException:
    # Every problem found here stops processing, so even EBMS:0002 (a warning by
    # default) is reported as a failure: the partner must not assume delivery.
    return EbmsException.of(code, description, severity=SEVERITY_FAILURE)


def _name(el: etree._Element) -> str:
    """Human-readable prefixed name for error messages."""
    q = etree.QName(el)
    prefix = {SOAP12_NS: "env", EBMS_NS: "eb"}.get(q.namespace or "")
    return f"{prefix}:{q.localname}" if prefix else (f"{{{q.namespace}}}{q.localname}" if q.namespace else q.localname)


def _elements(parent: etree._Element) -> list[etree._Element]:
    """Element children only (comments and PIs are not structure)."""
    return [c for c in parent if isinstance(c.tag, str)]


def _check_children(parent: etree._Element, path: str, allowed: set[str], *, foreign_ok: bool = False) -> None:
    """Reject unknown children; ``foreign_ok`` mirrors the schema's xsd:any ##other."""
    for c in _elements(parent):
        if c.tag in allowed:
            continue
        if foreign_ok and etree.QName(c).namespace not in (EBMS_NS, None):
            continue
        raise _fail(f"{path} contains unexpected element {_name(c)}")


def _one(parent: etree._Element, tag: str, path: str, *, required: bool = True) -> etree._Element | None:
    found = [c for c in _elements(parent) if c.tag == tag]
    local = etree.QName(tag).localname
    if len(found) > 1:
        raise _fail(f"{path}/eb:{local} appears {len(found)} times; exactly one is allowed")
    if not found:
        if required:
            raise _fail(f"{path}/eb:{local} is missing")
        return None
    return found[0]


def _text(el: etree._Element, path: str, *, allow_empty: bool = False) -> str:
    if _elements(el):
        raise _fail(f"{path} must contain text only, not child elements")
    value = (el.text or "").strip()
    if not value and not allow_empty:
        raise _fail(f"{path} is empty")
    return value


def _required_text(parent: etree._Element, tag: str, path: str) -> str:
    el = _one(parent, tag, path)
    assert el is not None
    return _text(el, f"{path}/eb:{etree.QName(tag).localname}")


def _optional_text(parent: etree._Element, tag: str, path: str) -> str | None:
    el = _one(parent, tag, path, required=False)
    if el is None:
        return None
    return _text(el, f"{path}/eb:{etree.QName(tag).localname}")


def _check_message_id(value: str, path: str) -> str:
    # ebMS Core 5.2.2.1: RFC 2822 msg-id *without* the surrounding angle brackets.
    if any(ch in value for ch in "<> \t\r\n"):
        raise _fail(f"{path} {value!r} must not contain angle brackets or whitespace")
    return value


def _message_info(parent: etree._Element, path: str) -> tuple[str, datetime, str | None]:
    mi_path = f"{path}/eb:MessageInfo"
    mi = _one(parent, eb("MessageInfo"), path)
    assert mi is not None
    _check_children(mi, mi_path, {eb("Timestamp"), eb("MessageId"), eb("RefToMessageId")})
    message_id = _check_message_id(_required_text(mi, eb("MessageId"), mi_path), f"{mi_path}/eb:MessageId")
    try:
        ts_text = _required_text(mi, eb("Timestamp"), mi_path)
        try:
            timestamp = parse_timestamp(ts_text)
        except ValueError as exc:
            raise _fail(f"{mi_path}/eb:Timestamp is not a valid xsd:dateTime: {ts_text!r}") from exc
        ref = _optional_text(mi, eb("RefToMessageId"), mi_path)
        if ref is not None:
            _check_message_id(ref, f"{mi_path}/eb:RefToMessageId")
    except EbmsException as exc:
        raise exc.with_ref(message_id) from exc.__cause__
    return message_id, timestamp, ref


def _properties(container: etree._Element | None, path: str) -> tuple[Property, ...]:
    if container is None:
        return ()
    _check_children(container, path, {eb("Property")})
    out = []
    for i, p in enumerate(_elements(container), 1):
        name = (p.get("name") or "").strip()
        if not name:
            raise _fail(f"{path}/eb:Property[{i}] has no name attribute")
        value = _text(p, f"{path}/eb:Property[@name={name!r}]", allow_empty=True)
        out.append(Property(name=name, value=value, type=p.get("type")))
    return tuple(out)


def _party(party_info: etree._Element, tag: str, path: str) -> Party:
    local = etree.QName(tag).localname
    p_path = f"{path}/eb:{local}"
    el = _one(party_info, tag, path)
    assert el is not None
    _check_children(el, p_path, {eb("PartyId"), eb("Role")})
    ids = []
    for pid in el.findall(eb("PartyId")):
        ids.append(PartyId(value=_text(pid, f"{p_path}/eb:PartyId"), type=pid.get("type")))
    if not ids:
        raise _fail(f"{p_path}/eb:PartyId is missing")
    role = _required_text(el, eb("Role"), p_path)
    return Party(party_ids=tuple(ids), role=role)


def _payloads(payload_info: etree._Element | None, path: str) -> tuple[PartInfo, ...]:
    if payload_info is None:
        return ()
    path = f"{path}/eb:PayloadInfo"
    _check_children(payload_info, path, {eb("PartInfo")})
    parts: list[PartInfo] = []
    seen: set[str | None] = set()
    for i, pi in enumerate(_elements(payload_info), 1):
        p_path = f"{path}/eb:PartInfo[{i}]"
        _check_children(pi, p_path, {eb("Schema"), eb("Description"), eb("PartProperties")})
        href = pi.get("href")
        if href is not None:
            href = href.strip()
            if href[:4].lower() == "cid:":
                if len(href) == 4:
                    raise _fail(f"{p_path} has an empty cid: href")
            elif href.startswith("#"):
                if len(href) == 1:
                    raise _fail(f"{p_path} has an empty #fragment href")
            else:
                raise _fail(
                    f"{p_path} href {href!r} is an external payload reference; only cid: and # are supported",
                    EXTERNAL_PAYLOAD,
                )
        if href in seen:
            raise _fail(f"{p_path} refers to {href or 'the SOAP body'} which another PartInfo already refers to")
        seen.add(href)
        props = _properties(_one(pi, eb("PartProperties"), p_path, required=False), f"{p_path}/eb:PartProperties")
        parts.append(PartInfo(href=href, properties=props))
    if not parts:
        raise _fail(f"{path} contains no eb:PartInfo")
    return tuple(parts)


def _user_message(um: etree._Element) -> UserMessage:
    path = "eb:UserMessage"
    _check_children(
        um,
        path,
        {eb("MessageInfo"), eb("PartyInfo"), eb("CollaborationInfo"), eb("MessageProperties"), eb("PayloadInfo")},
    )
    message_id, timestamp, ref = _message_info(um, path)
    try:
        pi_path = f"{path}/eb:PartyInfo"
        party_info = _one(um, eb("PartyInfo"), path)
        assert party_info is not None
        _check_children(party_info, pi_path, {eb("From"), eb("To")})
        from_party = _party(party_info, eb("From"), pi_path)
        to_party = _party(party_info, eb("To"), pi_path)

        ci_path = f"{path}/eb:CollaborationInfo"
        collab = _one(um, eb("CollaborationInfo"), path)
        assert collab is not None
        _check_children(
            collab, ci_path, {eb("AgreementRef"), eb("Service"), eb("Action"), eb("ConversationId")}
        )
        agreement = _one(collab, eb("AgreementRef"), ci_path, required=False)
        agreement_ref = agreement_type = pmode = None
        if agreement is not None:
            agreement_ref = _text(agreement, f"{ci_path}/eb:AgreementRef")
            agreement_type = agreement.get("type")
            pmode = agreement.get("pmode")
        service_el = _one(collab, eb("Service"), ci_path)
        assert service_el is not None
        service = _text(service_el, f"{ci_path}/eb:Service")
        action = _required_text(collab, eb("Action"), ci_path)
        conversation_id = _required_text(collab, eb("ConversationId"), ci_path)

        props = _properties(
            _one(um, eb("MessageProperties"), path, required=False), f"{path}/eb:MessageProperties"
        )
        payloads = _payloads(_one(um, eb("PayloadInfo"), path, required=False), path)
    except EbmsException as exc:
        raise exc.with_ref(message_id) from exc.__cause__

    return UserMessage(
        message_id=message_id,
        timestamp=timestamp,
        ref_to_message_id=ref,
        from_party=from_party,
        to_party=to_party,
        agreement_ref=agreement_ref,
        agreement_type=agreement_type,
        pmode=pmode,
        service=service,
        service_type=service_el.get("type"),
        action=action,
        conversation_id=conversation_id,
        message_properties=props,
        payloads=payloads,
        mpc=um.get("mpc"),
    )


def _errors(sig: etree._Element, path: str) -> tuple[EbmsError, ...]:
    out = []
    for i, e in enumerate(sig.findall(eb("Error")), 1):
        e_path = f"{path}/eb:Error[{i}]"
        code = (e.get("errorCode") or "").strip()
        if not code:
            raise _fail(f"{e_path} has no errorCode attribute")
        severity = (e.get("severity") or "").strip()
        if severity.lower() not in (SEVERITY_FAILURE, SEVERITY_WARNING):
            raise _fail(f"{e_path} severity {severity!r} is neither 'failure' nor 'warning'")
        desc_el = e.find(eb("Description"))
        description = None
        if desc_el is not None:
            description = "".join(desc_el.itertext()).strip() or None
        out.append(
            EbmsError(
                error_code=code,
                severity=severity.lower(),
                category=e.get("category"),
                short_description=e.get("shortDescription"),
                description=description,
                ref_to_message_id=e.get("refToMessageInError"),
                origin=e.get("origin"),
            )
        )
    return tuple(out)


def _receipt_references(rc: etree._Element, path: str) -> tuple[etree._Element, ...]:
    nris = rc.findall(ebbp("NonRepudiationInformation"))
    if not nris:
        return ()  # non-repudiation-less receipt (copy of the UserMessage, AS4 5.1.8)
    if len(nris) > 1:
        raise _fail(f"{path} has {len(nris)} ebbp:NonRepudiationInformation elements", INVALID_RECEIPT)
    refs = []
    for i, part in enumerate(nris[0].findall(ebbp("MessagePartNRInformation")), 1):
        found = part.findall(ds("Reference"))
        if len(found) > 1:
            raise _fail(f"{path} ebbp:MessagePartNRInformation[{i}] holds {len(found)} ds:Reference", INVALID_RECEIPT)
        refs.extend(found)
    if not refs:
        raise _fail(f"{path} ebbp:NonRepudiationInformation contains no ds:Reference", INVALID_RECEIPT)
    return tuple(refs)


def _signal(sig: etree._Element) -> tuple[Receipt | None, tuple[etree._Element, ...], ErrorSignal | None]:
    path = "eb:SignalMessage"
    if sig.find(eb("PullRequest")) is not None:
        raise _fail("eb:PullRequest is not supported: this gateway only pushes", FEATURE_NOT_SUPPORTED)
    _check_children(sig, path, {eb("MessageInfo"), eb("Receipt"), eb("Error")}, foreign_ok=True)
    message_id, timestamp, ref = _message_info(sig, path)
    try:
        receipt = None
        refs: tuple[etree._Element, ...] = ()
        rc = _one(sig, eb("Receipt"), path, required=False)
        if rc is not None:
            if ref is None:
                raise _fail(f"{path}/eb:MessageInfo/eb:RefToMessageId is required in a receipt")
            refs = _receipt_references(rc, f"{path}/eb:Receipt")
            receipt = Receipt(message_id=message_id, timestamp=timestamp, ref_to_message_id=ref)
        errors = _errors(sig, path)
        error_signal = None
        if errors:
            error_signal = ErrorSignal(
                message_id=message_id, timestamp=timestamp, ref_to_message_id=ref, errors=errors
            )
        if receipt is None and error_signal is None:
            raise _fail(f"{path} carries neither eb:Receipt nor eb:Error")
    except EbmsException as exc:
        raise exc.with_ref(message_id) from exc.__cause__
    return receipt, refs, error_signal


def _messaging_unit(messaging: etree._Element) -> tuple[etree._Element | None, etree._Element | None]:
    """The single eb:UserMessage or eb:SignalMessage of eb:Messaging (bundling refused)."""
    _check_children(messaging, "eb:Messaging", {eb("UserMessage"), eb("SignalMessage")}, foreign_ok=True)
    ums = messaging.findall(eb("UserMessage"))
    sigs = messaging.findall(eb("SignalMessage"))
    if len(ums) > 1:
        raise _fail(f"eb:Messaging bundles {len(ums)} eb:UserMessage elements; bundling is not supported", FEATURE_NOT_SUPPORTED)
    if len(sigs) > 1:
        raise _fail(f"eb:Messaging bundles {len(sigs)} eb:SignalMessage elements; bundling is not supported", FEATURE_NOT_SUPPORTED)
    if ums and sigs:
        raise _fail("eb:Messaging bundles a UserMessage with a SignalMessage; bundling is not supported", FEATURE_NOT_SUPPORTED)
    if not ums and not sigs:
        raise _fail("eb:Messaging contains neither eb:UserMessage nor eb:SignalMessage")
    return (ums[0] if ums else None), (sigs[0] if sigs else None)


def parse_user_message(messaging: etree._Element) -> UserMessage:
    """Parse the eb:UserMessage of one given ``eb:Messaging`` element.

    The inbound pipeline calls this on the element the signature verifier proved it
    covered, so that every value it acts on comes from signed content and never from a
    look-alike copy elsewhere in the envelope (signature wrapping). Raises like
    :func:`parse_envelope`; EBMS:0009 when the element carries a signal instead.
    """
    if messaging.tag != eb("Messaging"):
        raise _fail(f"expected eb:Messaging, got {_name(messaging)}")
    um, _sig = _messaging_unit(messaging)
    if um is None:
        raise _fail("eb:Messaging carries a signal message, not an eb:UserMessage")
    return _user_message(um)


def parse_envelope(root: etree._Element) -> ParsedEnvelope:
    """Validate a SOAP 1.2 envelope's ebMS structure and extract its messages.

    Raises :class:`EbmsException`: EBMS:0009 InvalidHeader for a non-SOAP-1.2 document,
    a missing/duplicated eb:Messaging or any missing, empty or malformed required field;
    EBMS:0002 FeatureNotSupported for bundling (several user or signal messages) and
    pull requests; EBMS:0011 for external payload hrefs; EBMS:0302 for a receipt whose
    NonRepudiationInformation is malformed. Errors carry the message id once known.
    """
    if not isinstance(root.tag, str):
        raise _fail("document root is not an element")
    q = etree.QName(root)
    if q.localname == "Envelope" and q.namespace == SOAP11_NS:
        raise _fail("SOAP 1.1 envelope received; AS4 requires SOAP 1.2 (http://www.w3.org/2003/05/soap-envelope)")
    if root.tag != env("Envelope"):
        raise _fail(f"document root is {root.tag}, not a SOAP 1.2 env:Envelope")
    children = _elements(root)
    tags = [c.tag for c in children]
    if tags.count(env("Header")) != 1:
        raise _fail(f"env:Envelope must contain exactly one env:Header, found {tags.count(env('Header'))}")
    if tags.count(env("Body")) != 1:
        raise _fail(f"env:Envelope must contain exactly one env:Body, found {tags.count(env('Body'))}")
    if tags != [env("Header"), env("Body")]:
        raise _fail("env:Envelope must contain env:Header followed by env:Body and nothing else")
    header, body = children

    messagings = [c for c in _elements(header) if c.tag == eb("Messaging")]
    if not messagings:
        raise _fail("env:Header has no eb:Messaging header block")
    if len(messagings) > 1:
        raise _fail(f"env:Header has {len(messagings)} eb:Messaging header blocks; exactly one is allowed")
    messaging = messagings[0]
    mu = messaging.get(env("mustUnderstand"))
    if mu is not None and mu.strip() not in ("true", "1", "false", "0"):
        raise _fail(f"eb:Messaging env:mustUnderstand {mu!r} is not an xs:boolean")

    user_message = receipt = error_signal = None
    refs: tuple[etree._Element, ...] = ()
    um, sig = _messaging_unit(messaging)
    if um is not None:
        user_message = _user_message(um)
    else:
        assert sig is not None
        receipt, refs, error_signal = _signal(sig)
    return ParsedEnvelope(
        user_message=user_message,
        receipt=receipt,
        nri_references=refs,
        error_signal=error_signal,
        messaging=messaging,
        body=body,
        envelope=root,
        header=header,
    )
