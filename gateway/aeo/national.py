"""National AEO data: the CSV the customs administration exports, read into Operator records.

Why CSV: it is what national AEO systems can export without integration work. Columns (header
row required; empty cells for absent values)::

    operator_id,scheme,name,line,city,postcode,country,certificate_type,status,valid_from,valid_to,
    suspension_start,suspension_end,suspension_reason

A canonical AEO XML list (``aeo-*.xml``) is accepted too, so an NSW can hand over either.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

from gateway.aeo.model import Address, Operator, Suspension, parse_list

COLUMNS = ("operator_id", "scheme", "name", "line", "city", "postcode", "country", "certificate_type",
           "status", "valid_from", "valid_to", "suspension_start", "suspension_end", "suspension_reason")
STATUSES = ("VALID", "SUSPENDED", "REVOKED", "EXPIRED")
TYPES = ("AEOC", "AEOS", "AEOF")


class NationalDataError(ValueError):
    """The national data file has a problem; the message names file, line and column."""


def _date(value: str, where: str) -> dt.date | None:
    if not value.strip():
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        raise NationalDataError(f"{where}: expected a date YYYY-MM-DD, got {value!r}") from None


def parse_national_csv(text: str, source: str = "national data") -> list[Operator]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in ("operator_id", "scheme", "name", "country", "certificate_type", "status", "valid_from")
               if c not in (reader.fieldnames or [])]
    if missing:
        raise NationalDataError(f"{source}: line 1: missing column(s) {', '.join(missing)} "
                                f"(expected {','.join(COLUMNS)})")
    operators: dict[str, Operator] = {}
    for number, row in enumerate(reader, start=2):
        row = {k: (v or "").strip() for k, v in row.items() if k}
        where = f"{source}: line {number}"
        for col in ("operator_id", "scheme", "name", "country"):
            if not row.get(col):
                raise NationalDataError(f"{where}: column {col} is empty")
        if row["status"] not in STATUSES:
            raise NationalDataError(f"{where}: status must be one of {', '.join(STATUSES)}, got {row['status']!r}")
        if row["certificate_type"] not in TYPES:
            raise NationalDataError(f"{where}: certificate_type must be one of {', '.join(TYPES)}, "
                                    f"got {row['certificate_type']!r}")
        start = _date(row.get("suspension_start", ""), f"{where} suspension_start")
        suspension = (Suspension(start, _date(row.get("suspension_end", ""), f"{where} suspension_end"),
                                 row.get("suspension_reason") or None),) if start else ()
        previous = operators.get(row["operator_id"])
        if previous is not None:
            # Repeated rows add suspension periods to the same operator.
            operators[row["operator_id"]] = Operator(**{**previous.__dict__,
                                                        "suspensions": previous.suspensions + suspension})
            continue
        valid_from = _date(row["valid_from"], f"{where} valid_from")
        if valid_from is None:
            raise NationalDataError(f"{where}: column valid_from is empty")
        operators[row["operator_id"]] = Operator(
            operator_id=row["operator_id"], scheme=row["scheme"], name=row["name"],
            address=Address(row["country"], row.get("line") or None, row.get("city") or None,
                            row.get("postcode") or None),
            certificate_type=row["certificate_type"], status=row["status"], valid_from=valid_from,
            valid_to=_date(row.get("valid_to", ""), f"{where} valid_to"), suspensions=suspension)
    return list(operators.values())


def load_national(path: Path) -> list[Operator]:
    """Operators from a national CSV, or from a canonical FULL AEO list in XML."""
    data = path.read_bytes()
    if path.suffix.lower() == ".xml":
        aeo_list = parse_list(data)
        return [c.record for c in aeo_list.changes if c.record is not None]
    return parse_national_csv(data.decode("utf-8-sig"), str(path))
