"""AEO registry: status as of a date, full lists and deltas, outgoing lists from national data."""
import datetime as dt
import json

import pytest

from gateway.aeo.model import (DELTA, FULL, Address, Operator, Suspension, build_list, delta_list, full_list,
                               parse_list, status_on)
from gateway.aeo.national import NationalDataError, parse_national_csv
from gateway.aeo.registry import AeoListRejected, AeoRegistry
from gateway.store.store import make_engine, migrate
from partners.documents import sample
from tests.harness import swgw, write_node

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)


@pytest.fixture
def registry(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'gw.db'}")
    migrate(engine)          # the tables come from Alembic revision 0003, not create_all
    yield AeoRegistry(engine)
    engine.dispose()


def op(**kw) -> Operator:
    base = dict(operator_id="X1", scheme="TIN", name="X Ltd", address=Address("KE"), certificate_type="AEOF",
                status="VALID", valid_from=dt.date(2024, 1, 1), valid_to=dt.date(2024, 12, 31))
    return Operator(**{**base, **kw})


def test_status_on_dates():
    o = op(suspensions=(Suspension(dt.date(2024, 3, 1), dt.date(2024, 3, 31), "review"),))
    assert status_on(o, dt.date(2023, 12, 31)) == "not-yet-valid"
    assert status_on(o, dt.date(2024, 2, 1)) == "valid"
    assert status_on(o, dt.date(2024, 3, 15)) == "suspended"
    assert status_on(o, dt.date(2025, 1, 1)) == "expired"
    assert status_on(op(status="REVOKED"), dt.date(2024, 2, 1)) == "revoked"
    assert status_on(op(status="SUSPENDED"), dt.date(2024, 2, 1)) == "suspended"
    assert status_on(None, dt.date(2024, 2, 1)) == "unknown"


def test_full_then_delta(registry):
    first = registry.apply(parse_list(sample("aeo-full-KE.xml")), message_id="m1")
    assert (first.upserted, first.deleted, first.already_applied) == (3, 0, False)
    assert registry.apply(parse_list(sample("aeo-full-KE.xml"))).already_applied
    [r] = registry.lookup("P000611222B", dt.date(2024, 5, 1))
    assert (r.status, r.issuing_country, r.record.name) == ("suspended", "KE", "Mombasa Coastal Freight Ltd")
    delta = registry.apply(parse_list(sample("aeo-delta-KE.xml")))
    assert (delta.upserted, delta.deleted) == (2, 1)
    assert registry.lookup("P000611222B", dt.date(2024, 6, 1))[0].status == "valid"
    assert registry.lookup("P051998877Q")[0].status == "unknown"
    assert registry.lookup("P052000111M", dt.date(2024, 5, 1))[0].status == "not-yet-valid"
    assert [row.list_type for row in registry.lists("KE")] == [FULL, DELTA]


def test_delta_on_wrong_base_is_rejected_and_changes_nothing(registry):
    with pytest.raises(AeoListRejected, match="before any full list"):
        registry.apply(parse_list(sample("aeo-delta-KE.xml")))
    registry.apply(parse_list(sample("aeo-full-KE.xml")))
    other = sample("aeo-delta-KE.xml").replace(b"<aeo:BasedOnListID>KE-AEO-2024-05-01-FULL",
                                               b"<aeo:BasedOnListID>KE-AEO-2024-04-01-FULL")
    with pytest.raises(AeoListRejected, match="a list in between is missing"):
        registry.apply(parse_list(other))
    assert registry.lookup("P051998877Q")[0].status == "valid"


def test_new_full_list_replaces_the_old(registry):
    registry.apply(parse_list(sample("aeo-full-KE.xml")))
    data = build_list(full_list([op(operator_id="P000611222B")], list_id="KE-2", issuing_country="KE",
                                authority="KRA", issued_at=NOW))
    result = registry.apply(parse_list(data))
    assert (result.upserted, result.deleted) == (1, 2)
    assert {o.operator_id for o in registry.operators("KE")} == {"P000611222B"}


NATIONAL = """operator_id,scheme,name,line,city,postcode,country,certificate_type,status,valid_from,valid_to,suspension_start,suspension_end,suspension_reason
P1,TIN,One Ltd,Road 1,Nairobi,00100,KE,AEOF,VALID,2022-01-01,2027-01-01,,,
P2,TIN,Two Ltd,,Mombasa,,KE,AEOS,SUSPENDED,2021-01-01,,2024-05-01,2024-08-01,audit
P2,TIN,Two Ltd,,Mombasa,,KE,AEOS,SUSPENDED,2021-01-01,,2023-01-01,2023-02-01,earlier audit
"""


def test_outgoing_full_and_delta_from_national_data():
    current = parse_national_csv(NATIONAL)
    assert len(current) == 2 and len(current[1].suspensions) == 2
    full = parse_list(build_list(full_list(current, list_id="KE-1", issuing_country="KE", authority="KRA",
                                           issued_at=NOW)))
    assert full.list_type == FULL and [c.operator_id for c in full.changes] == ["P1", "P2"]
    assert full.changes[1].record == current[1]
    changed = [current[0].__class__(**{**current[0].__dict__, "status": "REVOKED"})]
    delta = parse_list(build_list(delta_list(current, changed, list_id="KE-2", based_on="KE-1",
                                             issuing_country="KE", authority="KRA", issued_at=NOW)))
    assert [(c.action, c.operator_id) for c in delta.changes] == [("DELETE", "P2"), ("UPSERT", "P1")]
    assert delta.based_on == "KE-1"


@pytest.mark.parametrize("text,message", [
    ("operator_id,name\n", "missing column"),
    (NATIONAL.replace("AEOF,VALID", "AEOF,GOOD"), "line 2: status must be"),
    (NATIONAL.replace("2022-01-01", "01/01/2022"), "line 2 valid_from: expected a date"),
])
def test_national_data_errors(text, message):
    with pytest.raises(NationalDataError, match=message):
        parse_national_csv(text)


def test_cli_import_lookup_export(tmp_path, pki):
    node = write_node(tmp_path, pki, "aa-nsw", "bb-nsw", 1, 2)
    full = tmp_path / "full.xml"
    full.write_bytes(sample("aeo-full-KE.xml"))
    config = str(node.config_path)
    result = swgw("aeo", "import", "-c", config, str(full))
    assert "3 operator(s) added or updated" in result.stdout
    valid = swgw("aeo", "lookup", "-c", config, "P051234567X", "--at", "2024-05-01")
    assert valid.returncode == 0 and "valid on 2024-05-01" in valid.stdout
    suspended = swgw("aeo", "lookup", "-c", config, "P000611222B", "--at", "2024-05-01", "--json", check=False)
    assert suspended.returncode == 1
    [answer] = json.loads(suspended.stdout)
    assert answer["status"] == "suspended" and answer["record"]["suspensions"][0]["reason"] == "Compliance review pending"
    assert swgw("aeo", "lookup", "-c", config, "NOBODY", check=False).stdout.startswith("NOBODY: unknown")
    national = tmp_path / "national.csv"
    national.write_text(NATIONAL)
    out = tmp_path / "out.xml"
    swgw("aeo", "export", "--national", str(national), "--country", "KE", "--authority", "KRA",
         "--list-id", "KE-9", "-o", str(out))
    assert parse_list(out.read_bytes()).list_id == "KE-9"
