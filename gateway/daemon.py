"""The daemon as a Twisted service tree: store, AS4 listener, sender, outbox poller.

``MultiService`` starts children in order and stops them in reverse, so on SIGTERM the
listener stops taking messages first, then in-flight sends finish, then the store closes.
"""
from __future__ import annotations

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import endpoints
from twisted.logger import Logger

from gateway.config import GatewayConfig
from gateway.connectors.folder import FolderConnector
from gateway.identity import LocalIdentity
from gateway.inbound import InboundPipeline
from gateway.outbound import OutboundPipeline
from gateway.outbox import OutboxPoller
from gateway.sender import Sender
from gateway.store.store import MessageStore
from gateway.transport.server import make_site
from gateway.transport.tls import server_options
from partners.registry import PartnerRegistry, load_partners

log = Logger()


class Gateway:
    """Everything one gateway needs, built from validated config (no I/O beyond loading)."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.identity = LocalIdentity.from_config(config)
        self._registry = load_partners(config.partners_dir)
        self.store = MessageStore(config.database_url, config.blob_dir)
        self.connector = FolderConnector(config.folder)
        self.outbound = OutboundPipeline(self.identity, self.registry, self.store)
        self.inbound = InboundPipeline(self.identity, self.registry, self.store, self.connector)

    def registry(self) -> PartnerRegistry:
        return self._registry

    @property
    def party_domain(self) -> str:
        return self.identity.party_id.lower() + ".swgw"


class _StoreService(service.Service):
    def __init__(self, store: MessageStore):
        self.store = store

    def stopService(self):
        self.store.close()
        return super().stopService()


def build_service(gateway: Gateway, reactor=None) -> service.MultiService:
    from twisted.internet import reactor as default_reactor
    reactor = reactor or default_reactor
    config = gateway.config
    top = service.MultiService()
    _StoreService(gateway.store).setServiceParent(top)
    listen = config.listen
    site = make_site(gateway.inbound.process, listen.max_message_bytes)
    if listen.tls:
        endpoint = endpoints.SSL4ServerEndpoint(
            reactor, listen.port, server_options(listen.cert, listen.key, listen.client_ca),
            interface=listen.host)
    else:
        log.warn("AS4 listener on {host}:{port} is PLAIN HTTP: only safe behind a TLS-terminating "
                 "reverse proxy", host=listen.host, port=listen.port)
        endpoint = endpoints.TCP4ServerEndpoint(reactor, listen.port, interface=listen.host)
    listener = StreamServerEndpointService(endpoint, site)
    listener.setName("as4-listener")
    listener.setServiceParent(top)
    Sender(config, gateway.store, gateway.registry, gateway.connector, reactor).setServiceParent(top)
    OutboxPoller(gateway.connector, gateway.outbound, gateway.party_domain,
                 config.folder.poll_interval).setServiceParent(top)
    return top
