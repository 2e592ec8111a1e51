"""Every partner folder's mapping fixtures pass (so a broken fixture fails `make test`)."""
import shutil
from pathlib import Path

import pytest

from partners.mapping import load_mappings
from partners.mapping.fixtures import load_fixtures, run_fixture
from tests.harness import swgw

ROOT = Path(__file__).resolve().parent.parent
PARTNERS = ROOT / "conf" / "partners"
FOLDERS = sorted(p for p in PARTNERS.iterdir() if p.is_dir())
CASES = [(folder, fixture) for folder in FOLDERS for fixture in load_fixtures(folder)]


def test_at_least_three_partners_with_fixtures():
    assert len({folder.name for folder, _ in CASES}) >= 3


@pytest.mark.parametrize("folder,fixture", CASES, ids=[f"{f.name}:{x.name}" for f, x in CASES])
def test_partner_mapping_fixture(folder, fixture):
    result = run_fixture(load_mappings(folder), fixture)
    assert result.ok, f"{folder.name}/{fixture.name}:\n{result.detail}"


def test_swgw_partners_test_passes_for_repository_partners():
    result = swgw("partners", "test", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sg-nsw: ephyto-traces-out (ephyto out): ok" in result.stdout


def test_broken_fixture_fails_with_a_diff(tmp_path):
    folder = tmp_path / "my-nsw"
    shutil.copytree(PARTNERS / "my-nsw", folder)
    expected = folder / "mappings" / "fixtures" / "eco-out.expected.xml"
    expected.write_bytes(expected.read_bytes().replace(b"<ExportCountry>KEN<", b"<ExportCountry>KE<"))
    result = swgw("partners", "test", "my-nsw", "--partners-dir", str(tmp_path), check=False)
    assert result.returncode == 1
    assert "eco-out (eco out): FAILED" in result.stdout
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert any(line.startswith("-") and line.endswith("<ExportCountry>KE</ExportCountry>") for line in lines)
    assert any(line.startswith("+") and line.endswith("<ExportCountry>KEN</ExportCountry>") for line in lines)


def test_error_fixture_that_no_longer_errors_fails(tmp_path):
    folder = tmp_path / "th-nsw"
    shutil.copytree(PARTNERS / "th-nsw", folder)
    spec = folder / "mappings" / "fixtures" / "eco-unknown-port.input.xml"
    spec.write_bytes(spec.read_bytes().replace(b"SGXXX", b"SGSIN"))
    result = swgw("partners", "test", "th-nsw", "--partners-dir", str(tmp_path), check=False)
    assert result.returncode == 1 and "expected an error containing" in result.stdout


def test_unknown_partner(tmp_path):
    result = swgw("partners", "test", "zz-nsw", "--partners-dir", str(PARTNERS), check=False)
    assert result.returncode == 2 and "my-nsw, sg-nsw, th-nsw" in result.stderr
