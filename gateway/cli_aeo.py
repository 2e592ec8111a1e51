"""``swgw aeo lookup|import|export``: the AEO mutual-recognition registry from the command line."""
from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Callable


def _registry(config_path: str):
    from gateway.aeo.registry import AeoRegistry
    from gateway.config import load_gateway_config
    from gateway.store.connect import open_engine
    from gateway.store.store import migrate
    config = load_gateway_config(config_path)
    engine = open_engine(config.database_url)
    migrate(engine)
    return AeoRegistry(engine)


def cmd_aeo_lookup(args) -> int:
    try:
        on = dt.date.fromisoformat(args.at) if args.at else dt.date.today()
    except ValueError:
        print(f"swgw aeo lookup: --at expects YYYY-MM-DD, got {args.at!r}", file=sys.stderr)
        return 2
    results = _registry(args.config).lookup(args.operator_id, on, args.country)
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            if r.record is None:
                print(f"{r.operator_id}: unknown (not in any AEO list received)")
                continue
            rec = r.record
            validity = f"{rec.valid_from}..{rec.valid_to or 'open'}"
            print(f"{r.operator_id} ({rec.scheme}, {r.issuing_country}): {r.status} on {on}  "
                  f"{rec.name}, {rec.certificate_type}, valid {validity}, list {r.list_id}")
            for s in rec.suspensions:
                print(f"  suspended {s.start}..{s.end or 'open'}{': ' + s.reason if s.reason else ''}")
    return 0 if any(r.status == "valid" for r in results) else 1


def cmd_aeo_import(args) -> int:
    from gateway.aeo.model import parse_list
    from gateway.aeo.registry import AeoListRejected
    from partners.documents import DocumentInvalid
    try:
        result = _registry(args.config).apply(parse_list(Path(args.file).read_bytes()))
    except (DocumentInvalid, AeoListRejected) as exc:
        print(f"swgw aeo import: {exc}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def cmd_aeo_export(args) -> int:
    """Build the outgoing AEO list from national data (full, or a delta against a previous list)."""
    from gateway.aeo.model import build_list, delta_list, full_list, parse_list
    from gateway.aeo.national import NationalDataError, load_national
    try:
        current = load_national(Path(args.national))
        now = dt.datetime.now(dt.timezone.utc)
        list_id = args.list_id or f"{args.country}-AEO-{now:%Y%m%dT%H%M%SZ}"
        common = dict(list_id=list_id, issuing_country=args.country, authority=args.authority,
                      issued_at=now, mra_reference=args.mra)
        if args.delta_from:
            previous = parse_list(Path(args.delta_from).read_bytes())
            before = [c.record for c in previous.changes if c.record is not None]
            aeo_list = delta_list(before, current, based_on=previous.list_id, **common)
        else:
            aeo_list = full_list(current, **common)
        data = build_list(aeo_list)
    except (NationalDataError, OSError, ValueError) as exc:
        print(f"swgw aeo export: {exc}", file=sys.stderr)
        return 1
    if args.output:
        Path(args.output).write_bytes(data)
        print(f"{args.output}: {aeo_list.list_type} list {aeo_list.list_id}, {len(aeo_list.changes)} operator(s)")
    else:
        sys.stdout.buffer.write(data)
    return 0


def register(sub: argparse._SubParsersAction, with_config: Callable) -> None:
    aeo = sub.add_parser("aeo", help="AEO mutual-recognition registry")
    asub = aeo.add_subparsers(dest="aeo_command", required=True)
    p = with_config(asub.add_parser("lookup", help="status and validity of an operator (exit 0 only if valid)"))
    p.add_argument("operator_id")
    p.add_argument("--at", help="date YYYY-MM-DD (default today)")
    p.add_argument("--country", help="only the list issued by this country (ISO alpha-2)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_aeo_lookup)
    p = with_config(asub.add_parser("import", help="apply a canonical AEO list (full or delta) to the registry"))
    p.add_argument("file")
    p.set_defaults(func=cmd_aeo_import)
    p = asub.add_parser("export", help="build the outgoing AEO list from national data (CSV or XML)")
    p.add_argument("--national", required=True, help="national AEO data file (.csv or canonical .xml)")
    p.add_argument("--country", required=True, help="our ISO 3166 alpha-2 code")
    p.add_argument("--authority", required=True, help="issuing customs authority name")
    p.add_argument("--mra", help="MRA reference")
    p.add_argument("--list-id")
    p.add_argument("--delta-from", help="previous list sent (XML): build a DELTA against it")
    p.add_argument("-o", "--output")
    p.set_defaults(func=cmd_aeo_export)
