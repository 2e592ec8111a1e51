"""Our answers to an inbound message: the signed receipt, or a signed ebMS error signal."""
from __future__ import annotations

import copy
import datetime as dt

from lxml import etree
from twisted.logger import Logger

from crypto import VerifyResult, sign_message, suite
from gateway import as4
from gateway.as4.namespaces import eb
from gateway.config import BASE_SUITE
from gateway.identity import LocalIdentity, MissingSuiteKeys, SuiteIdentity
from gateway.inbound.context import SOAP_CONTENT_TYPE, Response

log = Logger()


class Answerer:
    def __init__(self, identity: LocalIdentity):
        self.identity = identity
        self._domain = identity.party_id.lower() + ".swgw"

    def new_id(self) -> str:
        return as4.new_message_id(self._domain)

    def keys(self, suite_name: str) -> SuiteIdentity:
        try:
            return self.identity.for_suite(suite_name)
        except MissingSuiteKeys as exc:
            # Start-up refuses partners whose suite we hold no keys for, so this is a
            # config changed under us; answering with the 1.15 keys beats not answering.
            log.error("{problem}; answering with the {base} keys", problem=str(exc), base=BASE_SUITE)
            return self.identity.for_suite(BASE_SUITE)

    def signed(self, envelope: etree._Element, suite_name: str = BASE_SUITE) -> bytes:
        keys = self.keys(suite_name)
        sign_message(envelope, [], keys.signing_key, keys.signing_cert, suite(keys.suite))
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def error(self, error: as4.EbmsError, suite_name: str = BASE_SUITE) -> Response:
        signal = as4.ErrorSignal(message_id=self.new_id(), timestamp=dt.datetime.now(dt.timezone.utc),
                                 ref_to_message_id=error.ref_to_message_id, errors=(error,))
        return Response(200, SOAP_CONTENT_TYPE, self.signed(as4.build_error(signal), suite_name))

    def receipt(self, mid: str, verified: VerifyResult | None, messaging: etree._Element,
                suite_name: str = BASE_SUITE) -> tuple[as4.Receipt, bytes]:
        """Signed receipt: NRI of the verified references, or (unsigned message accepted by
        PMode) a copy of the eb:UserMessage as AS4 5.1.8 asks."""
        receipt = as4.Receipt(message_id=self.new_id(), timestamp=dt.datetime.now(dt.timezone.utc),
                              ref_to_message_id=mid)
        if verified is not None:
            envelope = as4.build_receipt(receipt, verified.references)
        else:
            envelope = as4.build_receipt(receipt, [], user_message=copy.deepcopy(messaging.find(eb("UserMessage"))))
        return receipt, self.signed(envelope, suite_name)
