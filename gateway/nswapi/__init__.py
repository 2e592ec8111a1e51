"""NSW HTTP API connector (separate port): submit, status, inbox. See ``resource`` and openapi.json."""
from gateway.nswapi.inbox import InboxView
from gateway.nswapi.resource import ApiRejected, NswApiConfig, NswApiResource, make_nsw_api_site, message_json

__all__ = ["ApiRejected", "InboxView", "NswApiConfig", "NswApiResource", "make_nsw_api_site", "message_json"]
