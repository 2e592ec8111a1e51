"""The inbound side: an AS4 message in, a signed receipt or ebMS error out (see ``pipeline.py``)."""
from gateway.inbound.checks import is_test_message, match_pmode
from gateway.inbound.context import SOAP_CONTENT_TYPE, InboundContext, InboundLimits, Response
from gateway.inbound.pipeline import InboundPipeline

__all__ = ["InboundContext", "InboundLimits", "InboundPipeline", "Response", "SOAP_CONTENT_TYPE",
           "is_test_message", "match_pmode"]
