"""A complete ebMS UserMessage to build on, for the wire-format tests."""
from datetime import datetime, timezone

from gateway.as4 import (
    PartInfo,
    Party,
    PartyId,
    Property,
    UserMessage,
)

UTC = timezone.utc


TS = datetime(2026, 11, 23, 19, 15, 22, 123000, tzinfo=UTC)


def make_user_message(**over) -> UserMessage:
    fields = dict(
        message_id="6b5f3f9e-0000-4000-8000-000000000001@gw.example.org",
        timestamp=TS,
        ref_to_message_id=None,
        from_party=Party((PartyId("NSW-AA", "urn:oasis:names:tc:ebcore:partyid-type:unregistered"),), "http://example.org/roles/sender"),
        to_party=Party((PartyId("urn:example:nsw-bb"), PartyId("0088:123", "iso6523")), "http://example.org/roles/receiver"),
        agreement_ref="http://example.org/agreements/aa-bb",
        agreement_type="urn:example:agreement",
        pmode="pm-aa-bb-ecert",
        service="urn:example:services:sps",
        service_type="urn:example:service-type",
        action="SubmitCertificate",
        conversation_id="conv-1",
        message_properties=(
            Property("originalSender", "urn:oasis:names:tc:ebcore:partyid-type:unregistered:C1", "t1"),
            Property("finalRecipient", "urn:oasis:names:tc:ebcore:partyid-type:unregistered:C4"),
        ),
        payloads=(
            PartInfo("cid:payload-1@gw.example.org", (Property("MimeType", "application/xml"), Property("CompressionType", "application/gzip"), Property("CharacterSet", "utf-8"))),
            PartInfo("cid:payload-2@gw.example.org", (Property("MimeType", "application/pdf"),)),
        ),
        mpc="http://example.org/mpc/1",
    )
    fields.update(over)
    return UserMessage(**fields)
