"""Code lists: reference lists (what a valid canonical code is) and per-partner translation tables.

Why two kinds: the canonical format uses international code lists (ISO 3166 alpha-2, UN/LOCODE,
UNECE Rec 20 units, HS, UNCL 1373 document status); a partner may use its own codes. A
partner's table says how to translate; the reference list says whether a canonical code is
real, so a typo in the NSW's data is caught before it leaves the country, not at the partner.

Per-partner table: ``conf/partners/<id>/mappings/codelists/<kind>.csv`` with header
``canonical,partner`` and an optional third column ``direction`` (``both`` (default), ``out``,
``in``) for many-to-one cases. A row ``*,*`` lets codes without a row pass unchanged, as long
as the canonical code is in the reference list. Without a table for a kind, codes pass
unchanged but must be in the reference list.

Pure apart from reading CSV files at load time.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

REFERENCE = Path(__file__).resolve().parent / "reference"
# kind -> file under reference/ (first column is the code); see reference/SOURCES.md
REFERENCE_LISTS = {
    "country": "country.csv",
    "unlocode": "unlocode.csv",
    "unit": "unit.csv",
    "hs": "hs.csv",
    "hs-version": "hs-version.csv",
    "document-status": "document-status.csv",
}
OUT, IN = "out", "in"
DIRECTIONS = (OUT, IN)


class UntranslatableCode(ValueError):
    """A code has no translation (or is not a valid canonical code); the mapping layer adds the XPath."""

    def __init__(self, kind: str, code: str, reason: str):
        self.kind, self.code, self.reason = kind, code, reason
        super().__init__(f"{kind} code {code!r}: {reason}")


class CodeTableError(ValueError):
    """A translation table file is malformed (reported as a config problem)."""


@lru_cache(maxsize=None)
def reference_codes(kind: str) -> frozenset[str] | None:
    """The valid canonical codes of ``kind``, or None when there is no reference list for it."""
    name = REFERENCE_LISTS.get(kind)
    if name is None:
        return None
    with open(REFERENCE / name, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        return frozenset(row[0].strip() for row in reader if row and row[0].strip())


def _is_reference(kind: str, code: str) -> bool:
    codes = reference_codes(kind)
    if codes is None:
        return True
    if kind == "hs":
        # HS subheadings beyond 6 digits are national (tariff lines): check the 6-digit stem.
        return code in codes or code[:6] in codes
    return code in codes


@dataclass(frozen=True)
class CodeTable:
    kind: str
    source: Path
    to_partner: Mapping[str, str]
    to_canonical: Mapping[str, str]
    passthrough: bool = False


def load_code_table(path: Path) -> CodeTable:
    """Read one ``<kind>.csv``; CodeTableError names the file and line of any problem."""
    kind = path.stem
    out: dict[str, str] = {}
    back: dict[str, str] = {}
    passthrough = False
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    if not rows or [c.strip() for c in rows[0][:2]] != ["canonical", "partner"]:
        raise CodeTableError(f"{path}: line 1: header must be 'canonical,partner[,direction]'")
    for number, row in enumerate(rows[1:], start=2):
        if not row or all(not c.strip() for c in row) or row[0].lstrip().startswith("#"):
            continue
        if len(row) < 2:
            raise CodeTableError(f"{path}: line {number}: expected canonical,partner[,direction], got {row!r}")
        canonical, partner = row[0].strip(), row[1].strip()
        direction = row[2].strip() if len(row) > 2 and row[2].strip() else "both"
        if direction not in ("both", OUT, IN):
            raise CodeTableError(f"{path}: line {number}: direction must be both, out or in, got {direction!r}")
        if (canonical, partner) == ("*", "*"):
            passthrough = True
            continue
        if not canonical or not partner:
            raise CodeTableError(f"{path}: line {number}: empty code")
        if direction in ("both", OUT):
            if canonical in out and out[canonical] != partner:
                raise CodeTableError(f"{path}: line {number}: canonical code {canonical!r} already maps to "
                                     f"{out[canonical]!r}; mark one row 'in'")
            out[canonical] = partner
        if direction in ("both", IN):
            if partner in back and back[partner] != canonical:
                raise CodeTableError(f"{path}: line {number}: partner code {partner!r} already maps back to "
                                     f"{back[partner]!r}; mark one row 'out'")
            back[partner] = canonical
        if not _is_reference(kind, canonical):
            raise CodeTableError(f"{path}: line {number}: {canonical!r} is not a valid {kind} code "
                                 f"(reference list {REFERENCE_LISTS.get(kind)})")
    return CodeTable(kind, path, MappingProxyType(out), MappingProxyType(back), passthrough)


@dataclass(frozen=True)
class CodeLists:
    """All translation tables of one partner."""
    tables: Mapping[str, CodeTable] = field(default_factory=dict)

    def translate(self, kind: str, code: str, direction: str) -> str:
        """Canonical -> partner code (``out``) or partner -> canonical (``in``)."""
        code = code.strip()
        table = self.tables.get(kind)
        if table is None:
            if reference_codes(kind) is None:
                raise UntranslatableCode(kind, code, f"no code table mappings/codelists/{kind}.csv and no "
                                         f"reference list for {kind!r} (known: {', '.join(REFERENCE_LISTS)})")
            if not _is_reference(kind, code):
                raise UntranslatableCode(kind, code, f"not in the {kind} reference list")
            return code
        mapped = (table.to_partner if direction == OUT else table.to_canonical).get(code)
        if mapped is not None:
            return mapped
        if table.passthrough and _is_reference(kind, code):
            return code
        side = "canonical" if direction == OUT else "partner"
        raise UntranslatableCode(kind, code, f"no row for {side} code {code!r} in {table.source.name}"
                                 + (" and not a valid reference code" if table.passthrough else ""))

    def check(self, kind: str, code: str) -> str:
        """The code itself, if it is in the reference list of ``kind``."""
        code = code.strip()
        if reference_codes(kind) is None:
            raise UntranslatableCode(kind, code, f"no reference list for {kind!r}")
        if not _is_reference(kind, code):
            raise UntranslatableCode(kind, code, f"not in the {kind} reference list")
        return code


def load_code_lists(folder: Path) -> tuple[CodeLists, list[str]]:
    """Every ``*.csv`` in ``folder`` (may not exist); returns the lists and the problems found."""
    tables: dict[str, CodeTable] = {}
    problems: list[str] = []
    if folder.is_dir():
        for path in sorted(folder.glob("*.csv")):
            try:
                tables[path.stem] = load_code_table(path)
            except (CodeTableError, OSError, csv.Error) as exc:
                problems.append(str(exc))
    return CodeLists(MappingProxyType(tables)), problems
