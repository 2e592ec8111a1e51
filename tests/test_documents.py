"""Canonical document types: real samples validate, invalid ones are rejected naming element and line."""
from pathlib import Path

import pytest

from partners import documents
from partners.documents import (DOCUMENT_TYPES, SAMPLES, DocumentInvalid, UnknownDocumentType, sample,
                                validate_document)

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("doc_type,name", [(t, s) for t, d in DOCUMENT_TYPES.items() for s in d.samples])
def test_bundled_samples_are_valid(doc_type, name):
    validate_document(doc_type, sample(name))


def test_real_ephyto_sample_validates_unchanged():
    # The IPPC sample as the demo sends it (conf/samples), byte for byte.
    validate_document("ephyto", (ROOT / "conf" / "samples" / "ephyto-AR-sample.xml").read_bytes())
    validate_document("manifest", (ROOT / "conf" / "samples" / "ens-CC315A-reduced.xml").read_bytes())


@pytest.mark.parametrize("name,element,line", [
    ("manifest-CC315A-schemaInvalid.xml", "TotNumOfIteHEA305", 20),
    ("manifest-CC315A-full-missing-TINPLD1.xml", "UNDanGooCodGDI1", 61),
    ("manifest-CC313A-reduced-bad-MRN.xml", "DocNumHEA5", 9),
])
def test_invalid_ens_samples_are_rejected_with_element_named(name, element, line):
    with pytest.raises(DocumentInvalid) as info:
        validate_document("manifest", (SAMPLES / "invalid" / name).read_bytes())
    assert info.value.element == element and info.value.line == line
    assert f"Element '{element}'" in str(info.value) and f"line {line}" in str(info.value)


def test_every_problem_is_listed():
    with pytest.raises(DocumentInvalid) as info:
        validate_document("manifest", (SAMPLES / "invalid" / "manifest-CC315A-full-missing-TINPLD1.xml").read_bytes())
    assert any("TINPLD1" in p for p in info.value.problems)


def test_wrong_root_names_the_root_and_what_was_expected():
    with pytest.raises(DocumentInvalid) as info:
        validate_document("eco", sample("manifest-CC315A-reduced.xml"))
    assert info.value.element == "CC315A"
    assert "PreferentialCertificateOfOrigin" in str(info.value)


def test_not_well_formed_gives_line():
    with pytest.raises(DocumentInvalid) as info:
        validate_document("ephyto", b"<a>\n<b>\n</a>")
    assert info.value.line == 3 and "not well-formed" in str(info.value)


def test_entities_are_not_expanded():
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>'
    with pytest.raises(DocumentInvalid):
        validate_document("eco", bomb)


def test_unknown_document_type():
    with pytest.raises(UnknownDocumentType, match="known: aeo, eco, ephyto, manifest, vet-cert"):
        validate_document("cites-permit", b"<a/>")


def test_sps_subset_rejects_unknown_element_and_missing_id():
    data = sample("sps-traces-CHEDPP.xml")
    bad = data.replace(b"<ram:TypeCode", b"<ram:Bogus/><ram:TypeCode", 1)
    with pytest.raises(DocumentInvalid) as info:
        validate_document("ephyto", bad)
    assert info.value.element == "Bogus"
    start = data.index(b"<ram:ID>CHEDPP")
    no_id = data[:start] + data[data.index(b"</ram:ID>", start) + len(b"</ram:ID>"):]
    with pytest.raises(DocumentInvalid, match="missing child element 'ram:ID'") as info:
        validate_document("ephyto", no_id)
    assert info.value.element == "SPSExchangedDocument"


def test_eco_schema_checks_codes():
    bad = sample("eco-KE-SG.xml").replace(b"<eco:ID>SGSIN</eco:ID>", b"<eco:ID>Singapore</eco:ID>")
    with pytest.raises(DocumentInvalid) as info:
        validate_document("eco", bad)
    assert info.value.element == "ID" and info.value.line is not None


def test_aeo_full_list_needs_complete_records():
    bad = sample("aeo-full-KE.xml").replace(b"<aeo:CertificateTypeCode>AEOC</aeo:CertificateTypeCode>", b"")
    with pytest.raises(DocumentInvalid, match="P051998877Q.*CertificateTypeCode"):
        validate_document("aeo", bad)
    delete_in_full = sample("aeo-full-KE.xml").replace(
        b'<aeo:OperatorID schemeID="TIN">P051998877Q', b'<aeo:ActionCode>DELETE</aeo:ActionCode>'
        b'<aeo:OperatorID schemeID="TIN">P051998877Q')
    with pytest.raises(DocumentInvalid, match="only allowed in a DELTA"):
        validate_document("aeo", delete_in_full)


def test_schemas_are_self_contained():
    # The product must not read the shared data folder (or the network) at run time: every
    # import/include resolves to a file under partners/schemas.
    from lxml import etree
    for path in documents.SCHEMAS.rglob("*.xsd"):
        for ref in etree.parse(str(path)).iter("{http://www.w3.org/2001/XMLSchema}import",
                                               "{http://www.w3.org/2001/XMLSchema}include"):
            location = ref.get("schemaLocation")
            if location:
                target = (path.parent / location).resolve()
                assert target.is_file() and documents.SCHEMAS in target.parents, (path, location)
