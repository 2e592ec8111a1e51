"""Per-partner mapping: XSLT with code-list extension functions, identity, errors naming the field."""
import shutil
import threading
from pathlib import Path

import pytest

from partners.configfile import ConfigError
from partners.documents import sample, validate_document
from partners.mapping import MappingError, load_mappings
from partners.mapping.codelists import CodeTableError, UntranslatableCode, load_code_lists, load_code_table
from partners.mapping.fixtures import canonical_text

ROOT = Path(__file__).resolve().parent.parent
PARTNERS = ROOT / "conf" / "partners"


def test_identity_when_no_stylesheet_returns_the_same_bytes():
    sg = load_mappings(PARTNERS / "sg-nsw")
    for doc_type, name in (("ephyto", "sps-ephyto-AR.xml"), ("vet-cert", "sps-traces-INTRA-EQUI.xml"),
                           ("manifest", "manifest-CC315A-reduced.xml")):
        data = sample(name)
        assert sg.outbound(doc_type, data) is data
        assert sg.inbound(doc_type, data) is data
    assert "identity" in sg.describe("ephyto", "out")


@pytest.mark.parametrize("partner,doc_type,name", [
    ("my-nsw", "eco", "eco-KE-SG.xml"), ("my-nsw", "aeo", "aeo-full-KE.xml"),
    ("my-nsw", "aeo", "aeo-delta-KE.xml"), ("th-nsw", "eco", "eco-KE-SG.xml")])
def test_round_trip_through_partner_dialect(partner, doc_type, name):
    m = load_mappings(PARTNERS / partner)
    canonical = sample(name)
    wire = m.outbound(doc_type, canonical)
    assert canonical_text(wire) != canonical_text(canonical)
    back = m.inbound(doc_type, wire)
    validate_document(doc_type, back)
    assert canonical_text(back) == canonical_text(canonical)


def test_my_dialect_uses_its_own_names_and_codes():
    wire = load_mappings(PARTNERS / "my-nsw").outbound("eco", sample("eco-KE-SG.xml"))
    assert b'<CertificateOfOrigin xmlns="urn:my:dagang:eco:2"' in wire
    for fragment in (b"<ExportCountry>KEN</ExportCountry>", b'unit="KG"', b'edition="H6"', b"<Status>VALID</Status>",
                     b'<PortOfDischarge code="SGSIN"'):
        assert fragment in wire


def test_untranslatable_code_names_xpath_and_code():
    m = load_mappings(PARTNERS / "my-nsw")
    bad = sample("eco-KE-SG.xml").replace(b"<eco:ImportCountryID>SG<", b"<eco:ImportCountryID>QQ<")
    with pytest.raises(MappingError) as info:
        m.outbound("eco", bad)
    err = info.value
    assert (err.kind, err.code, err.direction, err.partner_id) == ("country", "QQ", "out", "my-nsw")
    assert err.xpath == "/eco:PreferentialCertificateOfOrigin/eco:SpecifiedConsignment/eco:ImportCountryID"
    assert "untranslatable country code 'QQ' at /eco:Pref" in str(err)


def test_attribute_code_path_is_named():
    m = load_mappings(PARTNERS / "th-nsw")
    bad = sample("eco-KE-SG.xml").replace(b'listVersionID="2022">060311', b'listVersionID="2007">060311')
    with pytest.raises(MappingError) as info:
        m.outbound("eco", bad)
    assert info.value.xpath.endswith("eco:IncludedTradeLineItem[2]/eco:SpecifiedTradeProduct/"
                                     "eco:DesignatedProductClassification/eco:ClassCode/@listVersionID")


def test_reference_check_catches_invalid_port_even_with_passthrough():
    m = load_mappings(PARTNERS / "my-nsw")
    ok = m.outbound("eco", sample("eco-KE-SG.xml").replace(b"<eco:ID>SGSIN<", b"<eco:ID>MYPKG<"))
    assert b'code="PKL"' in ok                      # table row
    with pytest.raises(MappingError, match="unlocode code 'SGZZZ'"):
        m.outbound("eco", sample("eco-KE-SG.xml").replace(b"<eco:ID>SGSIN<", b"<eco:ID>SGZZZ<"))


def test_xsl_message_terminate_becomes_mapping_error():
    with pytest.raises(MappingError, match="is not a my:CertificateOfOrigin"):
        load_mappings(PARTNERS / "my-nsw").inbound("eco", b"<other/>")


def test_not_well_formed_input():
    with pytest.raises(MappingError, match="not well-formed"):
        load_mappings(PARTNERS / "my-nsw").outbound("eco", b"<a>")


def _copy_partner(tmp_path, name="my-nsw") -> Path:
    target = tmp_path / name
    shutil.copytree(PARTNERS / name / "mappings", target / "mappings")
    return target


def test_broken_stylesheet_is_a_config_problem(tmp_path):
    folder = _copy_partner(tmp_path)
    (folder / "mappings" / "eco.out.xsl").write_text("<xsl:stylesheet version='1.0' "
                                                     "xmlns:xsl='http://www.w3.org/1999/XSL/Transform'>"
                                                     "<xsl:template match='/'><xsl:value-of select='((('/></xsl:template>"
                                                     "</xsl:stylesheet>")
    (folder / "mappings" / "eco.sideways.xsl").write_text("<x/>")
    with pytest.raises(ConfigError) as info:
        load_mappings(folder)
    text = str(info.value)
    assert "eco.out.xsl: not a valid XSLT" in text and "eco.sideways.xsl: stylesheet names are" in text


def test_code_table_problems(tmp_path):
    path = tmp_path / "country.csv"
    path.write_text("canonical,partner\nKE,KEN\nXX,XXX\n")
    with pytest.raises(CodeTableError, match="line 3: 'XX' is not a valid country code"):
        load_code_table(path)
    path.write_text("canonical,partner\nKE,KEN\nKE,KNY\n")
    with pytest.raises(CodeTableError, match="already maps"):
        load_code_table(path)
    path.write_text("code,value\n")
    with pytest.raises(CodeTableError, match="header"):
        load_code_table(path)


def test_code_table_directions(tmp_path):
    (tmp_path / "unit.csv").write_text("canonical,partner,direction\nKGM,KG\nGRM,KG,out\nTNE,T\n")
    lists, problems = load_code_lists(tmp_path)
    assert not problems
    assert lists.translate("unit", "GRM", "out") == "KG"
    assert lists.translate("unit", "KG", "in") == "KGM"
    with pytest.raises(UntranslatableCode):
        lists.translate("unit", "LTR", "out")
    # no table: reference list only
    assert lists.translate("country", "KE", "out") == "KE"
    with pytest.raises(UntranslatableCode, match="not in the country reference list"):
        lists.translate("country", "ZZ", "out")
    with pytest.raises(UntranslatableCode, match="no code table"):
        lists.translate("colour", "red", "out")
    assert lists.check("hs", "06031100") == "06031100"     # national 8-digit line under a real HS6


def test_mapping_is_thread_safe():
    m = load_mappings(PARTNERS / "my-nsw")
    data = sample("eco-KE-SG.xml")
    expected = m.outbound("eco", data)
    results, errors = [], []

    def work():
        try:
            for _ in range(20):
                results.append(m.outbound("eco", data) == expected)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and all(results) and len(results) == 120


def test_registry_loads_mappings_with_partner(tmp_path, pki):
    from partners.registry import load_partners
    from tests.harness import write_node
    node = write_node(tmp_path, pki, "aa-nsw", "bb-nsw", 1, 2)
    folder = node.home / "partners" / "bb-nsw"
    shutil.copytree(PARTNERS / "my-nsw" / "mappings", folder / "mappings")
    partner = load_partners(node.home / "partners").get("bb-nsw")
    assert partner.mappings.has_mapping("eco", "out")
    (folder / "mappings" / "codelists" / "unit.csv").write_text("canonical,partner\nNOPE,X\n")
    with pytest.raises(ConfigError, match="unit.csv: line 2"):
        load_partners(node.home / "partners")


def test_stylesheet_edited_on_disk_after_load_is_not_used(tmp_path):
    # What load validated is what runs until a reload: a later edit (here: a half-written file) or a
    # deletion on disk must not reach a worker thread that compiles the stylesheet for the first time.
    folder = _copy_partner(tmp_path)
    m = load_mappings(folder)
    data = sample("eco-KE-SG.xml")
    expected = m.outbound("eco", data)
    sheet = folder / "mappings" / "eco.out.xsl"
    sheet.write_text("<xsl:stylesheet version='1.0' xmlns:xsl='http://www.w3.org/1999/XSL/Transform'><xsl:templ")
    results, errors = [], []

    def work():
        try:
            results.append(m.outbound("eco", data))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert not errors and results == [expected]
    sheet.unlink()
    t = threading.Thread(target=work)
    t.start()
    t.join()
    assert not errors and results == [expected, expected]
    assert m.describe("eco", "out") == "mappings/eco.out.xsl (my-nsw, eco, out)"


def test_stylesheet_that_fails_to_compile_is_a_mapping_error(tmp_path):
    folder = _copy_partner(tmp_path)
    m = load_mappings(folder)
    m.sources = {**m.sources, ("eco", "out"): b"<xsl:stylesheet"}     # as if corrupted after validation
    with pytest.raises(MappingError, match="eco.out.xsl does not compile"):
        m.outbound("eco", sample("eco-KE-SG.xml"))
