"""``swgw``: the operator's command line (serve, submit, trace, messages, pki, checkconfig)."""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from partners.configfile import ConfigError

DEFAULT_CONFIG = os.environ.get("SWGW_CONFIG", "conf/gateway.toml")
# The sample gateways (conf/, conf/peers/) and the authority that signs the national e-COs.
SAMPLE_PARTIES = ("ke-nsw", "sg-nsw", "my-nsw", "th-nsw", "ke-coo-authority")


def _load_config(path: str):
    from gateway.config import load_gateway_config
    return load_gateway_config(path)


def _store(config):
    from gateway.store.store import MessageStore
    return MessageStore(config.database_url, config.blob_dir)


def _iso(t) -> str | None:
    from gateway.as4 import format_timestamp
    return format_timestamp(t) if t is not None else None


# -- commands --------------------------------------------------------------------
def cmd_serve(args) -> int:
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from gateway.daemon import Gateway, build_service
    config = _load_config(args.config)
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stdout)], redirectStandardIO=False)
    from gateway.reload import install_sighup, remove_pid, write_pid
    from gateway.transport.activation import AS4, ActivationError, shared_listening_fd
    if args.worker:
        return _serve_worker(args.worker, config, reactor)
    gateway = Gateway(config)
    from twisted.internet.error import CannotListenError
    sockets, shared = {}, None
    if config.workers > 1:
        # One listening socket for the main process and its workers (gateway/workers.py).
        try:
            shared = shared_listening_fd(reactor, AS4, config.listen.host, config.listen.port)
        except OSError as exc:
            print(f"swgw: cannot listen on {config.listen.host}:{config.listen.port}: {exc.strerror}; another "
                  "process (another swgw?) holds the port: stop it or change the port in gateway.toml",
                  file=sys.stderr)
            return 1
    try:
        if shared is not None and not _inherited(AS4):
            sockets[AS4] = os.dup(shared)
        top = build_service(gateway, reactor, sockets, worker_socket=shared)   # else systemd's sockets, if any
        top.startService()
    except ActivationError as exc:
        print(f"swgw: {exc}", file=sys.stderr)
        return 2
    except CannotListenError as exc:
        print(f"swgw: cannot listen on {exc.interface or '*'}:{exc.port}: {exc.socketError}; another process "
              "(another swgw?) holds the port: stop it or change the port in gateway.toml", file=sys.stderr)
        return 1
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    # `swgw partners reload` finds us by the pid file and signals SIGHUP.
    # The handler goes in first: a reload asked for as soon as the pid file appears must not
    # meet SIGHUP's default action (which ends the process).
    install_sighup(gateway.reload_partners, reactor)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    write_pid(config.state_dir)
    reactor.addSystemEventTrigger("after", "shutdown", remove_pid, config.state_dir)
    print(f"swgw: {config.party_id} serving AS4 on "
          f"{'https' if config.listen.tls else 'http'}://{config.listen.host}:{config.listen.port}/as4 "
          f"with {len(gateway.registry().partners)} partner(s)", flush=True)
    if config.nsw_api is not None:
        api = config.nsw_api
        print(f"swgw: NSW API on {'https' if api.tls else 'http'}://{api.host}:{api.port}/api/v1 "
              f"(OpenAPI: /openapi.json)", flush=True)
    reactor.run()
    return 0


def _inherited(name: str) -> bool:
    from twisted.internet import reactor
    from gateway.transport.activation import inherited_endpoint
    return inherited_endpoint(reactor, name, "0.0.0.0") is not None


def _serve_worker(index: int, config, reactor) -> int:
    """``swgw serve --worker N``, started by the main process (gateway/workers.py), never by hand."""
    from gateway.daemon import Gateway, build_service
    from gateway.reload import install_sighup
    from gateway.transport.activation import AS4
    from gateway.workers import WORKER_FD_ENV
    fd = os.environ.get(WORKER_FD_ENV)
    if fd is None:
        print("swgw: --worker is how `swgw serve` starts its worker processes; run `swgw serve` instead",
              file=sys.stderr)
        return 2
    # The main process may forward a reload while this one still loads: remember it (SIGHUP's
    # default action would end the worker) and reload once the service runs.
    asked = []
    signal.signal(signal.SIGHUP, lambda *_: asked.append(True))
    gateway = Gateway(config, worker=True)
    top = build_service(gateway, reactor, {AS4: int(fd)}, worker=index)
    top.startService()
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)
    install_sighup(gateway.reload_partners, reactor)
    if asked:
        os.kill(os.getpid(), signal.SIGHUP)
    print(f"swgw: {config.party_id} worker {index} (pid {os.getpid()}) takes AS4 connections and sends", flush=True)
    reactor.run()
    return 0


def cmd_submit(args) -> int:
    from gateway.identity import LocalIdentity
    from gateway.outbound import OutboundPipeline, Submission
    from partners.registry import load_partners
    config = _load_config(args.config)
    registry = load_partners(config.partners_dir)
    try:
        document = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"swgw submit: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    store = _store(config)
    from gateway.documents import DocumentSigners
    pipeline = OutboundPipeline(LocalIdentity.from_config(config), lambda: registry, store,
                                DocumentSigners(config.document_signers))
    message_id = pipeline.submit(Submission(partner_id=args.to, document_type=args.type, document=document,
                                            nsw_reference=args.ref))
    print(message_id)
    return 0


def _message_json(msg) -> dict:
    return {"message_id": msg.message_id, "direction": msg.direction, "partner": msg.partner_id,
            "document_type": msg.document_type, "reference": msg.nsw_reference, "status": msg.status,
            "attempts": msg.attempts, "next_attempt_at": _iso(msg.next_attempt_at),
            "created_at": _iso(msg.created_at), "last_error": msg.last_error}


def cmd_trace(args) -> int:
    if not args.message_id and not args.ref:
        print("swgw trace: give a message id or --ref REF", file=sys.stderr)
        return 2
    store = _store(_load_config(args.config))
    messages = store.find(message_id=args.message_id, reference=None if args.message_id else args.ref)
    if not messages:
        what = f"message id {args.message_id}" if args.message_id else f"reference {args.ref}"
        print(f"swgw trace: no message with {what} in this gateway's store", file=sys.stderr)
        return 1
    traces = []
    for msg in messages:
        trace = _message_json(msg)
        trace["events"] = [{"time": _iso(e.time), "step": e.step, "outcome": e.outcome, "detail": e.detail}
                           for e in msg.events]
        traces.append(trace)
    if args.json:
        print(json.dumps(traces[0] if len(traces) == 1 else traces, indent=2))
        return 0
    for t in traces:
        arrow = "to" if t["direction"] == "out" else "from"
        print(f"{t['message_id']}  ({'outbound' if t['direction'] == 'out' else 'inbound'} {arrow} "
              f"{t['partner']}, {t['document_type']}, reference {t['reference']})  status: {t['status']}")
        for e in t["events"]:
            print(f"  {e['time']}  {e['step']:<11} {e['outcome']:<10} {e['detail'] or ''}")
        if t["next_attempt_at"] and t["status"] == "queued":
            print(f"  next attempt at {t['next_attempt_at']}")
    return 0


def cmd_messages(args) -> int:
    store = _store(_load_config(args.config))
    if args.action in ("retry", "cancel"):
        if not args.message_id:
            print(f"swgw messages {args.action}: give the message id", file=sys.stderr)
            return 2
        operator = os.environ.get("USER", "operator")
        try:
            if args.action == "retry":
                msg = store.retry_message(args.message_id, operator)
            else:
                msg = store.cancel_message(args.message_id, operator)
        except (LookupError, ValueError) as exc:
            print(f"swgw messages {args.action}: {exc.args[0]}", file=sys.stderr)
            return 1
        print(f"{msg.message_id}: {msg.status}" + (" (a running daemon sends it at its next poll)"
                                                    if args.action == "retry" else ""))
        return 0
    rows = [_message_json(m) for m in store.list_messages(args.partner, args.status, args.limit)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no messages")
    for r in rows:
        print(f"{r['created_at']}  {r['direction']:<3} {r['partner']:<12} {r['status']:<10} "
              f"{(r['document_type'] or '-'):<12} {r['reference'] or '-':<16} {r['message_id']}")
    return 0


def cmd_pki_init(args) -> int:
    from crypto.devpki import ensure_party
    root = Path(args.dir)
    for party in args.party or SAMPLE_PARTIES:
        # One pair per suite family: RSA (1.15), Ed25519/X25519 and EC P-256 (2.0), so any
        # sample partner can be switched to a 2.0 suite by config alone.
        for key_type in ("rsa", "ed25519", "ec-p256"):
            files = ensure_party(root, party, key_type=key_type)
        print(f"{files.directory}: tls, sign, enc (RSA), sign-ed25519 + enc-x25519, sign-ec-p256 + enc-ec-p256 "
              f"certificates and keys (CA: {root / 'ca' / 'ca.crt'})")
    return 0


def cmd_checkconfig(args) -> int:
    """Validate gateway.toml and every partner folder in one run, listing all problems."""
    from partners.registry import load_partners
    problems: list[str] = []
    config = registry = None
    try:
        config = _load_config(args.config)
    except ConfigError as exc:
        problems += exc.problems
    # abspath, not resolve(): the config path may be a symlink loop (already reported above).
    partners_dir = config.partners_dir if config else Path(os.path.abspath(args.config)).parent / "partners"
    try:
        registry = load_partners(partners_dir)
    except ConfigError as exc:
        problems += exc.problems
    if config is not None and registry is not None:
        from gateway.identity import suite_key_problems
        problems += suite_key_problems(config, registry)
    if problems:
        raise ConfigError(problems)
    from gateway.store.connect import check
    database = check(config.database_url)          # DatabaseUnavailable: one line, exit 1
    print(f"{config.file}: OK ({config.party_id}, {len(registry.partners)} partner(s): "
          f"{', '.join(sorted(registry.partners)) or 'none'}; {database})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="swgw", description="Single-window interconnection gateway (AS4)")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p):
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG,
                       help=f"gateway config file (default {DEFAULT_CONFIG}, or $SWGW_CONFIG)")
        return p

    serve = with_config(sub.add_parser("serve", help="run the gateway daemon"))
    serve.add_argument("--worker", type=int, default=0, help=argparse.SUPPRESS)   # gateway/workers.py
    serve.set_defaults(func=cmd_serve)
    p = with_config(sub.add_parser("submit", help="queue a document for a partner"))
    p.add_argument("--to", required=True, help="partner id (folder name under conf/partners)")
    p.add_argument("--type", required=True, help="document type (a PMode's document_type)")
    p.add_argument("--ref", help="the NSW's own reference for the document")
    p.add_argument("file")
    p.set_defaults(func=cmd_submit)
    p = with_config(sub.add_parser("trace", help="show the timeline of one message"))
    p.add_argument("message_id", nargs="?")
    p.add_argument("--ref", help="find the message by the NSW's reference instead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_trace)
    p = with_config(sub.add_parser("messages", help="list messages, or retry/cancel one",
                                   usage="swgw messages [list] [--partner P] [--status S] [--json] | "
                                         "swgw messages retry|cancel MESSAGE_ID"))
    p.add_argument("action", nargs="?", choices=("list", "retry", "cancel"), default="list")
    p.add_argument("message_id", nargs="?")
    p.add_argument("--partner")
    p.add_argument("--status")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_messages)
    pki = sub.add_parser("pki", help="development PKI").add_subparsers(dest="pki_command", required=True)
    p = pki.add_parser("init", help="generate a dev CA and party certificates (never for production)")
    p.add_argument("--dir", default="certs")
    p.add_argument("--party", action="append", help=f"party name (default: {', '.join(SAMPLE_PARTIES)})")
    p.set_defaults(func=cmd_pki_init)
    with_config(sub.add_parser("checkconfig", help="validate gateway and partner config")).set_defaults(
        func=cmd_checkconfig)
    from gateway import cli_aeo, cli_partners   # trade documents (issue 5): partners, validate, aeo
    cli_partners.register(sub, with_config)
    cli_aeo.register(sub, with_config)
    from gateway.cli_evidence import register_evidence   # non-repudiation evidence (issue 4)
    register_evidence(sub, with_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConfigError as exc:
        print(f"swgw: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"swgw: {exc.strerror or exc}: {exc.filename or ''} (check free disk space and that the "
              f"state directory is writable)", file=sys.stderr)
        return 1
    except Exception as exc:  # an operator sees the problem, not a traceback
        from crypto.keys import KeyFileError
        from gateway.outbound import SubmissionRejected
        from gateway.store.connect import DatabaseUnavailable
        if isinstance(exc, (KeyFileError, SubmissionRejected)):
            print(f"swgw: {exc}", file=sys.stderr)
            return 2
        if isinstance(exc, DatabaseUnavailable):
            print(f"swgw: {exc}", file=sys.stderr)
            return 1
        raise


def run() -> None:
    """The ``swgw`` console script. Only a real command resets SIGPIPE (so ``swgw ... | head``
    ends quietly); ``main()`` called inside another process, a test say, must not."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    sys.exit(main())


if __name__ == "__main__":
    run()
