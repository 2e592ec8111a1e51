"""``swgw evidence verify|export|timestamp|purge|checkpoint``: the operator's side of the evidence log.

Registered into the main parser by ``register_evidence``; kept out of ``cli.py`` so the
evidence commands evolve with ``gateway/evidence``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


EXIT_OK, EXIT_BROKEN, EXIT_ERROR = 0, 1, 2


def _open(args):
    """Config, its ``[evidence]`` table and the store for one command."""
    from gateway.config import load_gateway_config
    from gateway.store.store import MessageStore
    config = load_gateway_config(args.config)
    return config, config.evidence, MessageStore(config.database_url, config.blob_dir)


def _decryption_keys(config) -> list[tuple[object, object]]:
    """Our decryption key for every suite we hold keys for, with that suite's policy, so an
    export can reproduce the attachments of a message received under any of them."""
    from crypto import suite
    from gateway.identity import LocalIdentity
    return [(keys.encryption_key, suite(keys.suite)) for keys in LocalIdentity.from_config(config).suites.values()]


def _fail(command: str, exc: Exception) -> int:
    print(f"swgw evidence {command}: {exc}", file=sys.stderr)
    return EXIT_ERROR


def _checkpoint_policy(config):
    """Where our checkpoints are and the certificates that sign them (read from gateway.toml)."""
    from gateway.evidence.checkpoint import certificates_from_config, checkpoint_dir
    from gateway.evidence.checkpoint_verify import CheckpointPolicy
    return CheckpointPolicy(checkpoint_dir(config.state_dir), certificates_from_config(config),
                            config.evidence.checkpoint_interval)


def cmd_verify(args) -> int:
    from gateway.evidence.verify import verify_evidence
    config, settings, store = _open(args)
    try:
        report = verify_evidence(store, settings.tsa_trust(), _checkpoint_policy(config))
    finally:
        store.close()
    if report.ok:
        print(f"evidence OK: {report.entries} entries, chain head seq {report.head_seq} "
              f"{report.head_hash or '-'}; {report.files_checked} files intact, "
              f"{report.files_purged} purged as recorded; {report.timestamps} time-stamp(s)"
              + (f", latest: {report.last_timestamp}" if report.last_timestamp else "")
              + f"; {report.checkpoint or 'no checkpoint yet'}")
        return EXIT_OK
    problems = report.sorted_problems()
    print(f"evidence BROKEN: first broken link: {problems[0]}", file=sys.stderr)
    for p in problems[1:args.max_problems]:
        print(f"  also: {p}", file=sys.stderr)
    if len(problems) > args.max_problems:
        print(f"  ... and {len(problems) - args.max_problems} more", file=sys.stderr)
    print(f"({report.entries} entries, {report.files_checked} files checked)", file=sys.stderr)
    return EXIT_BROKEN


def cmd_export(args) -> int:
    from gateway.evidence.errors import EvidenceError
    from gateway.evidence.export import export_bundle
    config, settings, store = _open(args)
    ca = list(settings.ca_certs) or [p for p in (config.listen.client_ca if config.listen else None,
                                                 config.tls_client_ca) if p is not None]
    try:
        result = export_bundle(store, args.message_id, Path(args.output), partner=args.partner,
                               direction=args.direction, ca_certs=ca, tsa_certs=settings.tsa_certs,
                               decrypt_keys=_decryption_keys(config),
                               exporter=f"swgw ({config.party_id})")
    except EvidenceError as exc:
        return _fail("export", exc)
    finally:
        store.close()
    print(f"{result.path}: {len(result.files)} files; see README.txt inside for how to verify")
    return EXIT_OK


def cmd_timestamp(args) -> int:
    from gateway.evidence.errors import EvidenceError
    from gateway.evidence.timestamp import timestamp_head
    _config, settings, store = _open(args)
    url = args.tsa or settings.tsa_url
    if not url:
        store.close()
        return _fail("timestamp", "no TSA: give --tsa URL or set tsa_url in [evidence]")
    timeout = args.timeout if args.timeout is not None else settings.tsa_timeout
    try:
        done = timestamp_head(store, url, settings.tsa_trust(), timeout=timeout)
    except EvidenceError as exc:
        return _fail("timestamp", exc)
    finally:
        store.close()
    print(f"time-stamped chain head seq {done.covered.seq} {done.covered.entry_hash} at "
          f"{done.token.gen_time.isoformat()} by {done.token.signer.subject.rfc4514_string()}; "
          f"recorded as entry seq {done.entry.seq}")
    return EXIT_OK


def cmd_checkpoint(args) -> int:
    from gateway.evidence.checkpoint import (MANUAL, CheckpointError, Signer, checkpoint_dir,
                                             certificates_from_config, write_checkpoint)
    from crypto.keys import KeyFileError
    config, _settings, store = _open(args)
    directory = checkpoint_dir(config.state_dir)
    try:
        key, cert = config.signing.load()
        done = write_checkpoint(store, directory, Signer(config.party_id, key, cert),
                                certificates_from_config(config), MANUAL)
    except (CheckpointError, KeyFileError, OSError) as exc:
        return _fail("checkpoint", exc)
    finally:
        store.close()
    if done is None:
        print(f"nothing to checkpoint: the chain is empty or its head is already the newest checkpoint's "
              f"(in {directory})")
    else:
        print(f"wrote checkpoint {done.number} of chain head seq {done.seq} {done.entry_hash} to {done.path}")
    return EXIT_OK


def cmd_purge(args) -> int:
    from gateway.evidence.purge import purge
    _config, settings, store = _open(args)
    days = args.older_than if args.older_than is not None else settings.retention_days
    if days is None:
        store.close()
        return _fail("purge", "give --older-than DAYS or set retention_days in [evidence]")
    try:
        result = purge(store, days, dry_run=args.dry_run)
    finally:
        store.close()
    if not result.messages:
        print(f"nothing to purge: no settled message older than {days:g} days not purged already")
    elif args.dry_run:
        print(f"would purge {len(result.messages)} message(s) created before {result.cutoff.isoformat()}, "
              f"{len(result.blobs)} file(s)")
    else:
        print(f"purged {len(result.messages)} message(s) created before {result.cutoff.isoformat()}: "
              f"{result.deleted_files} file(s) deleted, recorded as evidence entry seq {result.entry.seq}")
    return EXIT_OK


def register_evidence(sub, with_config: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    """Add ``swgw evidence ...`` to the main parser's subcommands."""
    evidence = sub.add_parser("evidence", help="non-repudiation evidence: verify, export, time-stamp, purge, checkpoint")
    ev = evidence.add_subparsers(dest="evidence_command", required=True)
    p = with_config(ev.add_parser("verify", help="check the hash chain, the stored files and the rows they witness"))
    p.add_argument("--max-problems", type=int, default=20, help="how many problems to list (default 20)")
    p.set_defaults(func=cmd_verify)
    p = with_config(ev.add_parser("export", help="write one message's evidence bundle (zip with a README)"))
    p.add_argument("message_id")
    p.add_argument("-o", "--output", required=True, help="zip file to write")
    p.add_argument("--partner", help="partner id, when the message id is not unique")
    p.add_argument("--direction", choices=("in", "out"), help="when the message id is not unique")
    p.set_defaults(func=cmd_export)
    p = with_config(ev.add_parser("timestamp", help="time-stamp the chain head with an RFC 3161 TSA"))
    p.add_argument("--tsa", help="TSA URL (default: [evidence] tsa_url)")
    p.add_argument("--timeout", type=float, help="seconds to wait for the TSA (default: [evidence] tsa_timeout)")
    p.set_defaults(func=cmd_timestamp)
    p = with_config(ev.add_parser("purge", help="delete stored bytes of old settled messages, recorded in the chain"))
    p.add_argument("--older-than", type=float, metavar="DAYS", help="default: [evidence] retention_days")
    p.add_argument("--dry-run", action="store_true", help="only say what would be purged")
    p.set_defaults(func=cmd_purge)
    p = with_config(ev.add_parser("checkpoint", help="sign the chain head into <state_dir>/evidence-checkpoints"
                                  " now (the daemon does so every checkpoint_interval)"))
    p.set_defaults(func=cmd_checkpoint)
