"""``swgw partners test|map|reload`` and ``swgw validate``: operator tools for documents and mappings.

``partners test`` runs a partner folder's mapping fixtures (exit 1 with a diff on a mismatch),
so an operator onboarding a partner sees the mapping work before the daemon is reloaded.
The partners folder comes from the gateway config's ``[gateway].partners_dir`` read as plain
TOML, so the command works on a machine without the gateway's keys.
"""
from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path
from typing import Callable


def partners_dir_of(config_path: str) -> Path:
    file = Path(config_path).resolve()
    try:
        data = tomllib.loads(file.read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        data = {}
    rel = (data.get("gateway") or {}).get("partners_dir", "partners")
    return (file.parent / rel).resolve()


def _partner_folders(args) -> list[Path] | None:
    root = Path(args.partners_dir) if args.partners_dir else partners_dir_of(args.config)
    if args.partner:
        folder = root / args.partner
        if not folder.is_dir():
            known = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) if root.is_dir() else "none"
            print(f"swgw partners: no partner folder {folder} (partners: {known})", file=sys.stderr)
            return None
        return [folder]
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def cmd_partners_test(args) -> int:
    from partners.configfile import ConfigError
    from partners.mapping import load_mappings
    from partners.mapping.fixtures import FixtureError, run_fixtures
    folders = _partner_folders(args)
    if folders is None:
        return 2
    failed = total = passed = 0
    for folder in folders:
        try:
            results = run_fixtures(load_mappings(folder), folder)
        except (ConfigError, FixtureError) as exc:
            print(f"{folder.name}: BROKEN: {exc}")
            failed += 1
            continue
        if not results:
            print(f"{folder.name}: no mapping fixtures (mappings/fixtures/*.toml)")
        for result in results:
            total += 1
            f = result.fixture
            label = f"{folder.name}: {f.name} ({f.document_type} {f.direction})"
            if result.ok:
                passed += 1
                print(f"{label}: ok")
            else:
                failed += 1
                print(f"{label}: FAILED\n{result.detail}")
    print(f"{passed} of {total} fixture(s) passed")
    return 1 if failed else 0


def cmd_partners_map(args) -> int:
    from partners.configfile import ConfigError
    from partners.mapping import MappingError, load_mappings
    folders = _partner_folders(args)
    if not folders:
        return 2
    try:
        mappings = load_mappings(folders[0])
        data = Path(args.file).read_bytes()
        out = mappings.transform(args.type, args.direction, data)
    except (ConfigError, MappingError, OSError) as exc:
        print(f"swgw partners map: {exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(out)
    return 0


def cmd_partners_reload(args) -> int:
    """Check the partners tree here first (the operator sees every problem at once), then
    signal the running daemon and report what it loaded."""
    from gateway.config import load_gateway_config
    from gateway.reload import ReloadRequestError, request_reload
    from partners.configfile import ConfigError
    from partners.registry import load_partners
    config = load_gateway_config(args.config)
    try:
        registry = load_partners(config.partners_dir)
    except ConfigError as exc:
        print("swgw partners reload: not reloaded, the daemon keeps its current partners; fix these first:\n"
              "  - " + "\n  - ".join(exc.problems), file=sys.stderr)
        return 1
    try:
        status = request_reload(config.state_dir, timeout=args.timeout)
    except ReloadRequestError as exc:
        print(f"swgw partners reload: {exc}", file=sys.stderr)
        return 2
    if not status.get("ok"):
        print("swgw partners reload: the daemon refused the new partners and keeps the old ones:\n  - "
              + "\n  - ".join(status.get("errors") or []), file=sys.stderr)
        return 1
    print(f"reloaded: {len(status['partners'])} partner(s): {', '.join(status['partners'])}"
          f" (checked {len(registry.partners)} here)")
    return 0


def cmd_validate(args) -> int:
    from partners.documents import DocumentInvalid, UnknownDocumentType, validate_document
    try:
        validate_document(args.type, Path(args.file).read_bytes())
    except (DocumentInvalid, UnknownDocumentType) as exc:
        print(f"{args.file}: INVALID: {exc}")
        for problem in getattr(exc, "problems", ())[1:]:
            print(f"  {problem}")
        return 1
    except OSError as exc:
        print(f"swgw validate: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"{args.file}: valid {args.type}")
    return 0


def register(sub: argparse._SubParsersAction, with_config: Callable) -> None:
    """Add ``partners`` and ``validate`` to the ``swgw`` parser (called from gateway.cli)."""
    partners = sub.add_parser("partners", help="partner folders: mapping fixtures, ad-hoc mapping")
    psub = partners.add_subparsers(dest="partners_command", required=True)
    p = with_config(psub.add_parser("test", help="run mapping fixtures of one partner (or all)"))
    p.add_argument("partner", nargs="?", help="partner id (folder name); default: every partner")
    p.add_argument("--partners-dir", help="partners folder (default: from the gateway config)")
    p.set_defaults(func=cmd_partners_test)
    p = with_config(psub.add_parser("map", help="map one document with a partner's mappings, print result"))
    p.add_argument("partner")
    p.add_argument("--type", required=True, help="document type")
    p.add_argument("--direction", choices=("out", "in"), default="out")
    p.add_argument("--partners-dir")
    p.add_argument("file")
    p.set_defaults(func=cmd_partners_map)
    p = with_config(psub.add_parser("reload", help="make the running daemon re-read the partners folder "
                                                   "(SIGHUP); the old partners stay if the new ones are broken"))
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the daemon's answer")
    p.set_defaults(func=cmd_partners_reload)
    p = sub.add_parser("validate", help="validate a document against its canonical schema")
    p.add_argument("--type", required=True, help="document type (manifest, ephyto, vet-cert, eco, aeo)")
    p.add_argument("file")
    p.set_defaults(func=cmd_validate)
