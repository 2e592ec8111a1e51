"""The outbound side: an NSW document in, a queued signed and encrypted AS4 message out."""
from gateway.outbound.context import OutboundContext
from gateway.outbound.pipeline import OutboundPipeline
from gateway.outbound.submission import DocumentNotValid, DocumentRejected, Submission, SubmissionRejected

__all__ = ["DocumentNotValid", "DocumentRejected", "OutboundContext", "OutboundPipeline", "Submission",
           "SubmissionRejected"]
