"""Development tool (not used at run time): derive the SPS Certificate 17 subset schema.

Why: the shared UN/CEFACT D17A schema set lacks ``ReusableAggregateBusinessInformationEntity_21p0.xsd``
(over 4 MiB) and ``QualifiedDataType_21p0.xsd``, so ``SPSCertificate_17p0.xsd`` cannot be compiled.
This script reads real SPS certificates (the IPPC ePhyto and EU TRACES samples) and writes a
self-contained ``ram`` subset schema: one complex type per aggregate seen, children in the order
seen (a merge of all observed orders), leaves typed with the real, unmodified
``UnqualifiedDataType_21p0.xsd``. The result accepts every sample and rejects unknown elements,
misplaced elements and malformed leaves. It is a subset: replace it with the full D17A package
when it is available.

Usage: python derive_subset.py OUT.xsd SAMPLE.xml [SAMPLE.xml ...]
"""
from __future__ import annotations

import sys
from collections import defaultdict

from lxml import etree

RSM = "urn:un:unece:uncefact:data:standard:SPSCertificate:17"
RAM = "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:21"
UDT = "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:21"


# Elements the SPS certificate cannot do without (UN/CEFACT SPS MIG: document id, type, issue date).
REQUIRED = {"SPSExchangedDocument": {"ID", "TypeCode", "IssueDateTime"}}


def leaf_type(name: str, el: etree._Element) -> str:
    """The UDT type of a leaf element, chosen by the CCTS representation term ending its name."""
    if name.endswith("DateTime"):
        # Producers disagree: TRACES writes udt:DateTimeString, the IPPC sample plain text.
        return "ram:LenientDateTimeType"
    if any(isinstance(c.tag, str) and etree.QName(c).localname == "IndicatorString" for c in el):
        return "udt:IndicatorType"
    if any(isinstance(c.tag, str) and etree.QName(c).localname == "Indicator" for c in el):
        return "udt:IndicatorType"
    if name.endswith("BinaryObject"):
        # The IPPC sample carries a deliberately broken attachment ("Rar-fil": not valid base64),
        # and it must still travel unchanged, so binary objects are checked as text here.
        return "ram:LenientBinaryObjectType"
    for suffix, typ in (("ID", "udt:IDType"),
                        ("Code", "udt:CodeType"), ("Measure", "udt:MeasureType"),
                        ("Weight", "udt:MeasureType"), ("Quantity", "udt:QuantityType"),
                        ("Amount", "udt:AmountType"), ("Numeric", "udt:NumericType"),
                        ("Percent", "udt:PercentType"), ("Rate", "udt:RateType"),
                        ("Indicator", "udt:IndicatorType"), ("DateTime", "udt:DateTimeType")):
        if name.endswith(suffix):
            return typ
    return "udt:TextType"


def consistent(order: list[str], orders: list[list[str]]) -> bool:
    pos = {k: i for i, k in enumerate(order)}
    return all([pos[k] for k in seq] == sorted(pos[k] for k in seq) for seq in orders)


def merge_order(orders: list[list[str]]) -> list[str]:
    """A total order consistent with every observed child order (first-seen on ties)."""
    after: dict[str, set[str]] = defaultdict(set)
    first: dict[str, int] = {}
    for seq in orders:
        for i, n in enumerate(seq):
            first.setdefault(n, len(first))
            after[n]  # noqa: B018 - make the key exist
            for m in seq[i + 1:]:
                if m != n:
                    after[n].add(m)
    result, placed = [], set()
    names = sorted(first, key=first.get)
    while len(result) < len(names):
        ready = [n for n in names if n not in placed
                 and not any(n in after[m] for m in names if m not in placed and m != n)]
        pick = ready[0] if ready else next(n for n in names if n not in placed)  # cycle: first seen
        result.append(pick)
        placed.add(pick)
    return result


def main(out: str, samples: list[str]) -> None:
    children: dict[str, list[list[str]]] = defaultdict(list)
    repeated: dict[str, set[str]] = defaultdict(set)
    leaves: dict[str, str] = {}
    aggregates: set[str] = set()
    for path in samples:
        tree = etree.parse(path)
        for cert in tree.iter(f"{{{RSM}}}SPSCertificate", "{*}SPSCertificate"):
            for el in cert.iter():
                if el is cert or not isinstance(el.tag, str) or etree.QName(el).namespace not in (RAM, RSM):
                    continue
                name = etree.QName(el).localname
                kids = [etree.QName(c).localname for c in el if isinstance(c.tag, str)
                        and etree.QName(c).namespace == RAM]
                if kids:
                    aggregates.add(name)
                    children[name].append(kids)
                    counts = defaultdict(int)
                    for k in kids:
                        counts[k] += 1
                    repeated[name] |= {k for k, n in counts.items() if n > 1}
                else:
                    leaves.setdefault(name, leaf_type(name, el))
    clash = aggregates & set(leaves)
    if clash:
        raise SystemExit(f"names used both as aggregate and leaf: {sorted(clash)}")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        "<!-- GENERATED by partners/schemas/sps/derive_subset.py from real SPS certificates.",
        "     A SUBSET of UN/CEFACT ReusableAggregateBusinessInformationEntity:21 (D17A) covering the",
        "     aggregates used by SPS Certificate 17 in the IPPC ePhyto and EU TRACES samples.",
        "     Not the official schema: see README.md. -->",
        f'<xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:ram="{RAM}" xmlns:udt="{UDT}"',
        f'  targetNamespace="{RAM}" elementFormDefault="qualified" attributeFormDefault="unqualified">',
        f'  <xsd:import namespace="{UDT}" schemaLocation="UnqualifiedDataType_21p0.xsd"/>',
    ]
    for name in sorted(aggregates):
        order = merge_order(children[name])
        ordered = consistent(order, children[name])
        lines.append(f'  <xsd:complexType name="{name}Type">')
        if not ordered:
            # The samples disagree on the order of children: accept any order of the known ones
            # (required children are then checked by partners.documents rules, not here).
            lines.append("    <!-- real samples use different child orders: order-free -->")
        lines.append("    <xsd:sequence>" if ordered else '    <xsd:choice minOccurs="0" maxOccurs="unbounded">')
        for kid in order:
            typ = f"ram:{kid}Type" if kid in aggregates else leaves[kid]
            low = "1" if ordered and kid in REQUIRED.get(name, ()) else "0"
            lines.append(f'      <xsd:element name="{kid}" type="{typ}" minOccurs="{low}" maxOccurs="unbounded"/>')
        lines.append("    </xsd:sequence>" if ordered else "    </xsd:choice>")
        lines.append("  </xsd:complexType>")
    lines += [
        '  <xsd:complexType name="LenientDateTimeType" mixed="true">',
        "    <!-- either udt:DateTimeString / udt:DateTime (UN/CEFACT) or the value as text (IPPC hub) -->",
        "    <xsd:sequence>",
        f'      <xsd:any namespace="{UDT}" processContents="lax" minOccurs="0"/>',
        "    </xsd:sequence>",
        '    <xsd:anyAttribute processContents="skip"/>',
        "  </xsd:complexType>",
        '  <xsd:complexType name="LenientBinaryObjectType">',
        "    <xsd:simpleContent>",
        '      <xsd:extension base="xsd:string">',
        '        <xsd:anyAttribute processContents="skip"/>',
        "      </xsd:extension>",
        "    </xsd:simpleContent>",
        "  </xsd:complexType>",
        "</xsd:schema>"]
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
