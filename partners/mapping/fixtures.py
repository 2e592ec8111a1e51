"""Mapping fixtures: each partner folder proves its own mappings with input/expected pairs.

``conf/partners/<id>/mappings/fixtures/<name>.toml``::

    document_type = "eco"
    direction = "out"            # out: canonical input -> partner output; in: the reverse
    # expect_error = "country"   # optional: the mapping must fail with a message containing this

beside ``<name>.input.xml`` and ``<name>.expected.xml`` (not needed with ``expect_error``).
The canonical side (input for ``out``, output for ``in``) is also validated against the
canonical schema, so a stylesheet that produces invalid canonical documents fails its fixture.
Outputs are compared after XML canonicalisation with whitespace-only text stripped, so
indentation does not matter but every element, attribute and value does.

``swgw partners test <id>`` and ``tests/test_partner_fixtures.py`` run these.
"""
from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from partners import documents, xmldoc
from partners.mapping.codelists import DIRECTIONS, OUT
from partners.mapping.engine import MappingError, PartnerMappings


@dataclass(frozen=True)
class Fixture:
    name: str
    document_type: str
    direction: str
    input: Path
    expected: Path | None
    expect_error: str | None = None


@dataclass(frozen=True)
class FixtureResult:
    fixture: Fixture
    ok: bool
    detail: str = ""            # diff or error text when not ok


class FixtureError(ValueError):
    """A fixture definition is broken (missing file, bad TOML)."""


def load_fixtures(partner_folder: Path) -> list[Fixture]:
    folder = Path(partner_folder) / "mappings" / "fixtures"
    fixtures = []
    if not folder.is_dir():
        return fixtures
    for spec in sorted(folder.glob("*.toml")):
        name = spec.stem
        try:
            data = tomllib.loads(spec.read_text("utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise FixtureError(f"{spec}: not valid TOML: {exc}") from None
        unknown = set(data) - {"document_type", "direction", "expect_error"}
        if unknown:
            raise FixtureError(f"{spec}: unknown key(s) {', '.join(sorted(unknown))}")
        doc_type, direction = data.get("document_type"), data.get("direction")
        if not isinstance(doc_type, str) or direction not in DIRECTIONS:
            raise FixtureError(f"{spec}: needs document_type = \"...\" and direction = \"out\" or \"in\"")
        inp, exp = folder / f"{name}.input.xml", folder / f"{name}.expected.xml"
        error = data.get("expect_error")
        if not inp.exists():
            raise FixtureError(f"{spec}: {inp.name} is missing")
        if error is None and not exp.exists():
            raise FixtureError(f"{spec}: {exp.name} is missing (or set expect_error)")
        fixtures.append(Fixture(name, doc_type, direction, inp, exp if exp.exists() else None, error))
    return fixtures


def canonical_text(xml: bytes) -> str:
    """C14N 2.0 without whitespace-only text, re-indented: stable and readable for diffs."""
    parsed = xmldoc.parse(xml)        # the hardened document parser: a DTD is refused here too
    c14n = etree.canonicalize(parsed, strip_text=True)
    tree = etree.fromstring(c14n.encode("utf-8"))
    etree.indent(tree)
    return etree.tostring(tree, encoding="unicode")


def run_fixture(mappings: PartnerMappings, fixture: Fixture) -> FixtureResult:
    data = fixture.input.read_bytes()
    try:
        if fixture.direction == OUT:
            documents.validate_document(fixture.document_type, data)
        output = mappings.transform(fixture.document_type, fixture.direction, data)
        if fixture.direction != OUT:
            documents.validate_document(fixture.document_type, output)
    except (MappingError, documents.DocumentInvalid, documents.UnknownDocumentType) as exc:
        if fixture.expect_error is not None and fixture.expect_error in str(exc):
            return FixtureResult(fixture, True)
        return FixtureResult(fixture, False, f"{type(exc).__name__}: {exc}")
    if fixture.expect_error is not None:
        return FixtureResult(fixture, False, f"expected an error containing {fixture.expect_error!r}, "
                                             "but the mapping succeeded")
    try:
        want = canonical_text(fixture.expected.read_bytes())
    except xmldoc.DocumentXmlRefused as exc:
        return FixtureResult(fixture, False, f"{fixture.expected.name}: {exc}")
    got = canonical_text(output)
    if want == got:
        return FixtureResult(fixture, True)
    diff = difflib.unified_diff(want.splitlines(), got.splitlines(), fromfile=fixture.expected.name,
                                tofile=f"{fixture.name} (actual output)", lineterm="")
    return FixtureResult(fixture, False, "\n".join(diff))


def run_fixtures(mappings: PartnerMappings, partner_folder: Path | None = None) -> list[FixtureResult]:
    return [run_fixture(mappings, f) for f in load_fixtures(partner_folder or mappings.folder)]
