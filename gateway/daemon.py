"""The daemon as a Twisted service tree: store, AS4 listener, sender, outbox poller.

The tree starts its children in order (listeners, sender, outbox poller, evidence jobs) and
on SIGTERM stops them one after another in reverse (``SequentialServices``): a running
evidence job finishes, the poller stops, in-flight sends finish and are recorded, then the
listeners close (so they keep accepting, into the database, while the sender drains: at most
the sender's timeout). The root (``CheckpointService``) then writes the stop checkpoint and
only then closes the store.
"""
from __future__ import annotations

import os
import time
from typing import Mapping

from twisted.application import service
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import defer
from twisted.logger import Logger

from crypto import content
from partners.documents import compile_all_schemas
from gateway.config import GatewayConfig, NswApiListenConfig
from gateway.documents import DocumentSigners
from gateway.evidence.scheduler import evidence_services, with_checkpoints
from gateway.connectors.folder import FolderConnector
from gateway.identity import LocalIdentity, suite_key_problems
from gateway.inbound import InboundLimits, InboundPipeline
from gateway.nswapi import NswApiConfig, make_nsw_api_site
from gateway.outbound import OutboundPipeline, Submission, SubmissionRejected
from gateway.outbox import OutboxPoller
from gateway.sender import Sender
from gateway.store.store import MessageStore
from gateway.transport.activation import AS4, NSW_API, server_endpoint
from gateway.transport.connections import protect
from gateway.transport.server import make_site
from gateway.reload import ReloadStatus, write_status
from gateway.transport.tls import server_options
from gateway.workers import MAIN_PID_ENV, MainWatch, WorkerPool
from partners.configfile import ConfigError
from partners.registry import PartnerRegistry, load_partners

log = Logger()


def inbound_limits(config: GatewayConfig) -> InboundLimits:
    """The operator's ``[listen]`` bounds; the built-in defaults when there is no listener table."""
    listen = config.listen
    if listen is None:
        return InboundLimits()
    return InboundLimits(max_message_bytes=listen.max_message_bytes, max_parts=listen.max_parts,
                         max_decompressed_bytes=listen.max_decompressed_bytes,
                         max_xml_depth=listen.max_xml_depth)


class Gateway:
    """Everything one gateway needs, built from validated config (no I/O beyond loading).
    ``worker``: this is a worker process (gateway/workers.py): the main process has already
    brought the schema up to date, and reload results are the main process's to report."""

    def __init__(self, config: GatewayConfig, *, worker: bool = False):
        self.config = config
        self.worker = worker
        self.workers = None     # the WorkerPool, in a main process that has workers
        compile_all_schemas()   # before any worker thread validates (libxml2 compiles are not thread-safe)
        self.identity = LocalIdentity.from_config(config)
        self._registry = self._load_registry()
        config.spool_dir.mkdir(parents=True, exist_ok=True)
        content.spool_dir = str(config.spool_dir)
        self.store = MessageStore(config.database_url, config.blob_dir, run_migrations=not worker)
        self.connector = FolderConnector(config.folder)
        self.signers = DocumentSigners(config.document_signers)
        self.outbound = OutboundPipeline(self.identity, self.registry, self.store, self.signers)
        self.inbound = InboundPipeline(self.identity, self.registry, self.store, self.connector,
                                       inbound_limits(config))

    def registry(self) -> PartnerRegistry:
        return self._registry

    def _load_registry(self) -> PartnerRegistry:
        """The partners folder, refused (ConfigError) if a PMode names a suite we hold no keys for."""
        registry = load_partners(self.config.partners_dir)
        problems = suite_key_problems(self.config, registry)
        if problems:
            raise ConfigError(problems)
        return registry

    def reload_partners(self) -> ReloadStatus:
        """Re-read the partners folder (blocking). The new registry replaces the old one only
        if the whole tree loads; otherwise the old one stays and the problems are reported.
        Pipelines take one registry snapshot per message, so a message never mixes configs."""
        try:
            registry = self._load_registry()
        except ConfigError as exc:
            log.error("partner reload refused, keeping the {n} partner(s) already loaded:\n{problems}",
                      n=len(self._registry.partners), problems="\n".join(exc.problems))
            status = ReloadStatus(ok=False, time=time.time(), partners=sorted(self._registry.partners),
                                  errors=exc.problems)
        except Exception as exc:  # noqa: BLE001 (an unreadable file, a library error: still answer the CLI)
            log.failure("partner reload failed, keeping the {n} partner(s) already loaded",
                        n=len(self._registry.partners))
            status = ReloadStatus(ok=False, time=time.time(), partners=sorted(self._registry.partners),
                                  errors=[f"reload failed ({type(exc).__name__}: {exc}); the daemon log has "
                                          "the details; fix the cause and reload again"])
        else:
            old = set(self._registry.partners)
            self._registry = registry
            new = set(registry.partners)
            log.info("partners reloaded: {partners} (added: {added}; removed: {removed})",
                     partners=", ".join(sorted(new)) or "none", added=", ".join(sorted(new - old)) or "none",
                     removed=", ".join(sorted(old - new)) or "none")
            status = ReloadStatus(ok=True, time=time.time(), partners=sorted(new))
        if self.workers is not None:
            self.workers.reload()
        if not self.worker:
            write_status(self.config.state_dir, status)
        return status

    @property
    def party_domain(self) -> str:
        return self.identity.party_id.lower() + ".swgw"


class SequentialServices(service.MultiService):
    """Starts its children in order and stops them one after another in reverse order, each
    once the one started after it has finished stopping. (``MultiService`` starts in order but
    stops all children at once, so the store would close while the sender still records the
    outcome of its last sends.)"""

    @defer.inlineCallbacks
    def stopService(self):
        service.Service.stopService(self)
        for child in reversed(list(self)):
            try:
                yield defer.maybeDeferred(child.stopService)
            except Exception:   # noqa: BLE001 (one child's failure must not keep the others running)
                log.failure("stopping {name} failed", name=child.name or type(child).__name__)


class NswRedelivery(service.Service):
    """At start-up, before the listeners: inbound messages a crash left committed but not yet in
    the NSW's hands (``received``) are handed over (blocking: normally none, one index lookup)."""
    name = "nsw-redelivery"

    def __init__(self, pipeline: InboundPipeline):
        self.pipeline = pipeline

    def startService(self):
        super().startService()
        count = self.pipeline.redeliver_owed()
        if count:
            log.info("handed {n} message(s) received before the last shutdown to the NSW", n=count)


def build_service(gateway: Gateway, reactor=None, sockets: Mapping[str, int] | None = None,
                  worker: int | None = None, worker_socket: int | None = None) -> service.MultiService:
    """The service tree. ``sockets`` are listening sockets handed over by an in-process caller
    (name -> fd); a listener without one takes the socket of its name that the service
    manager passed (systemd socket activation), else binds its configured port itself
    (gateway/transport/activation.py). ``worker``: the tree of worker process ``worker``
    (gateway/workers.py): the AS4 listener and the sender only. ``worker_socket``: in the main
    process, the AS4 listening socket its ``[gateway] workers`` share."""
    from twisted.internet import reactor as default_reactor
    reactor = reactor or default_reactor
    sockets = sockets or {}
    config = gateway.config
    if worker is not None:
        return _worker_service(gateway, reactor, sockets)
    top = SequentialServices()       # the store is closed by the root, after the last checkpoint
    listen = config.listen
    if not listen.tls:
        log.warn("AS4 listener on {host}:{port} is PLAIN HTTP: only safe behind a TLS-terminating "
                 "reverse proxy", host=listen.host, port=listen.port)
    NswRedelivery(gateway.inbound).setServiceParent(top)
    _as4_listener(gateway, reactor, sockets).setServiceParent(top)
    if config.workers > 1 and worker_socket is not None:
        gateway.workers = WorkerPool(config.file, config.workers, worker_socket, reactor)
        gateway.workers.setServiceParent(top)
    sender = Sender(config, gateway.store, gateway.registry, gateway.connector, reactor)
    if config.nsw_api is not None:
        nsw_api_service(gateway, reactor, sockets, queued=lambda: reactor.callFromThread(sender.tick)
                        ).setServiceParent(top)
    sender.setServiceParent(top)
    OutboxPoller(gateway.connector, gateway.outbound, gateway.party_domain, config.folder.poll_interval,
                 queued=lambda: reactor.callFromThread(sender.tick)).setServiceParent(top)
    # Stopped first: a running time-stamp or purge finishes before anything else stops.
    for job in evidence_services(gateway.store, config.evidence):
        job.setServiceParent(top)
    # The root: checkpoints the evidence chain head outside the database every interval, and
    # once more after everything above has stopped.
    return with_checkpoints(top, gateway.store, config, gateway.identity, reactor)


def _as4_listener(gateway: Gateway, reactor, sockets: Mapping[str, int]) -> StreamServerEndpointService:
    listen = gateway.config.listen
    site = protect(make_site(gateway.inbound.process, listen.max_message_bytes), listen.connections, reactor)
    listener = StreamServerEndpointService(
        _endpoint(reactor, AS4, listen.host, listen.port, listen.tls, listen.cert, listen.key, listen.client_ca,
                  sockets), site)
    listener._raiseSynchronously = True     # a port that cannot be bound fails startService, not a log line
    listener.setName("as4-listener")
    return listener


def _worker_service(gateway: Gateway, reactor, sockets: Mapping[str, int]) -> service.MultiService:
    """A worker: serves AS4 on the main process's socket and sends; the store is closed last."""
    config = gateway.config
    top = SequentialServices()
    MainWatch(int(os.environ.get(MAIN_PID_ENV, os.getppid())), reactor).setServiceParent(top)
    _as4_listener(gateway, reactor, sockets).setServiceParent(top)
    Sender(config, gateway.store, gateway.registry, gateway.connector, reactor, recover=False).setServiceParent(top)
    root = _ClosingStore(gateway.store)
    top.setServiceParent(root)
    return root


class _ClosingStore(service.MultiService):
    """Closes the store once everything under it has stopped."""

    def __init__(self, store: MessageStore):
        super().__init__()
        self.store = store

    @defer.inlineCallbacks
    def stopService(self):
        yield defer.maybeDeferred(super().stopService)
        self.store.close()


def _endpoint(reactor, name: str, host: str, port: int, tls: bool, cert, key, client_ca,
              sockets: Mapping[str, int]):
    return server_endpoint(reactor, name=name, host=host, port=port,
                           tls_options=server_options(cert, key, client_ca) if tls else None, handed=sockets)


def nsw_api_service(gateway: Gateway, reactor, sockets: Mapping[str, int] | None = None,
                    queued=None) -> StreamServerEndpointService:
    """The NSW HTTP API on its own port: submit through the same outbound pipeline as the
    folder connector, status from the same store, the same inbox folder."""
    api: NswApiListenConfig = gateway.config.nsw_api

    def submit(partner: str, document_type: str, document: bytes, reference: str | None) -> str:
        message_id = gateway.outbound.submit(Submission(partner_id=partner, document_type=document_type,
                                                        document=document, nsw_reference=reference))
        if queued is not None:
            queued()                # the sender need not wait for its poll
        return message_id

    site = make_nsw_api_site(submit=submit, find=lambda mid, ref: gateway.store.find(mid, ref),
                             inbox_dir=gateway.config.folder.inbox,
                             config=NswApiConfig(tokens=api.tokens, max_document_bytes=api.max_document_bytes),
                             rejections={SubmissionRejected: 400})
    site = protect(site, api.connections, reactor)
    if not api.tls:
        log.warn("NSW API on {host}:{port} is PLAIN HTTP (bearer tokens in clear): keep it on a trusted "
                 "network or set tls = true", host=api.host, port=api.port)
    listener = StreamServerEndpointService(
        _endpoint(reactor, NSW_API, api.host, api.port, api.tls, api.cert, api.key, api.client_ca, sockets or {}),
        site)
    listener._raiseSynchronously = True
    listener.setName("nsw-api-listener")
    return listener
