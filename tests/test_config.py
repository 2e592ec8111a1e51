"""Config loading: a good tree loads, a bad one is reported in one pass with file and key path.

Operators fix config in one go only if every problem is listed at once, each naming the
file and the ``[table.key]`` it concerns; these tests hold the loaders to that.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from gateway.config import load_gateway_config
from partners.configfile import ConfigError
from partners.registry import load_partners
from tests.harness import swgw, write_pair


@pytest.fixture
def pair(tmp_path, pki):
    return write_pair(tmp_path, pki)


def partner_toml(node, peer="bb-nsw") -> Path:
    return node.home / "partners" / peer / "partner.toml"


def problems_of(excinfo) -> list[str]:
    return excinfo.value.problems


def only(problems: list[str], needle: str) -> str:
    """The one problem that mentions ``needle``."""
    found = [p for p in problems if needle in p]
    assert len(found) == 1, f"expected one problem with {needle!r} in {problems}"
    return found[0]


# -- the good case --------------------------------------------------------------------
def test_valid_pair_loads(pair, pki):
    a, b = pair
    config = load_gateway_config(a.config_path)
    assert config.party_id == "AA-NSW"
    assert config.file == a.config_path.resolve()
    assert config.partners_dir == (a.home / "partners").resolve()
    assert config.state_dir == (a.home / "state").resolve()
    assert config.database_url == f"sqlite:///{(a.home / 'state' / 'gateway.db').resolve()}"
    assert config.listen.port == a.port and config.listen.tls
    assert config.signing.key_path == (pki / "aa-nsw" / "sign.key").resolve()
    assert config.folder.poll_interval == 0.1

    registry = load_partners(config.partners_dir)
    assert set(registry.partners) == {"bb-nsw"}
    partner = registry.get("bb-nsw")
    assert partner.party_id == "BB-NSW"
    assert partner.endpoint == f"https://127.0.0.1:{b.port}/as4"
    assert len(partner.signing_certs) == 1 and partner.encryption_cert is not None
    assert {p.document_type for p in partner.pmodes} == {"ephyto", "manifest", "test-cert", "test-manifest"}
    assert registry.by_party_id("BB-NSW", partner.party_id_type) is partner
    assert partner.pmode_for_document("manifest").compress is False


# -- all problems at once -------------------------------------------------------------
def test_partner_problems_are_all_reported_with_file_and_key(pair, pki):
    a, _ = pair
    file = partner_toml(a)
    text = file.read_text()
    text = re.sub(r'(?m)^party_id = "BB-NSW"\n', "", text)                      # missing key
    text = text.replace("https://127.0.0.1", "ftp://127.0.0.1")                 # bad URL
    text = text.replace(str(pki / "bb-nsw" / "enc.crt"), str(pki / "bb-nsw" / "nope.crt"))  # no file
    text = text.replace("tls_trust =", "tls_trsut =")                           # typo
    file.write_text(text)

    with pytest.raises(ConfigError) as excinfo:
        load_partners(a.home / "partners")
    problems = problems_of(excinfo)
    assert len(problems) == 4, problems
    for p in problems:
        assert p.startswith(f"{file.resolve()} [partner."), p
    assert "missing" in only(problems, "[partner.party_id]")
    assert "ftp://" in only(problems, "[partner.endpoint]")
    assert "nope.crt does not exist" in only(problems, "[partner.encryption_cert]")
    assert "unknown key" in only(problems, "[partner.tls_trsut]")
    # The exception text shows them all too (that is what the CLI prints).
    for p in problems:
        assert p in str(excinfo.value)


def test_problems_across_partners_and_pmodes_are_collected(pair, pki):
    """Problems in two partner folders and inside [[pmode]] tables come back in one error."""
    a, _ = pair
    other = a.home / "partners" / "cc-nsw"
    other.mkdir()
    (other / "partner.toml").write_text('[partner]\nparty_id = "CC-NSW"\nendpoint = "https://cc.example/as4"\n'
                                        f'signing_certs = ["{pki / "bb-nsw" / "sign.crt"}"]\n'
                                        f'encryption_cert = "{pki / "bb-nsw" / "enc.crt"}"\n'
                                        '[[pmode]]\ndocument_type = "ephyto"\nservice = "s"\n'
                                        'retry = { max_attempts = 0, multiplyer = 2 }\n')
    file = partner_toml(a)
    file.write_text(file.read_text().replace('compress = false', 'compress = "no"'))
    with pytest.raises(ConfigError) as excinfo:
        load_partners(a.home / "partners")
    problems = problems_of(excinfo)
    cc = str((other / "partner.toml").resolve())
    assert "missing" in only(problems, f"{cc} [pmode[0].action]")
    assert "at least 1" in only(problems, f"{cc} [pmode[0].retry.max_attempts]")
    assert "unknown key" in only(problems, f"{cc} [pmode[0].retry.multiplyer]")
    assert "true or false" in only(problems, f"{file.resolve()} [pmode[1].compress]")


def test_gateway_problems_are_all_reported_with_file_and_key(pair):
    a, _ = pair
    text = a.config_path.read_text()
    text = text.replace('party_id = "AA-NSW"\n', "")
    text = re.sub(r"(?m)^port = \d+", 'port = "eighty"', text)
    text = text.replace("signing_cert =", "signing_certificate =")
    text = text.replace("[sender]", "[sender]\nconcurrency = 0")
    a.config_path.write_text(text)
    with pytest.raises(ConfigError) as excinfo:
        load_gateway_config(a.config_path)
    problems = problems_of(excinfo)
    file = str(a.config_path.resolve())
    assert all(p.startswith(file + " [") for p in problems), problems
    assert "missing" in only(problems, "[gateway.party_id]")
    assert "integer" in only(problems, "[listen.port]")
    assert "missing" in only(problems, "[security.signing_cert]")
    assert "unknown key" in only(problems, "[security.signing_certificate]")
    assert "at least 1" in only(problems, "[sender.concurrency]")


def test_missing_and_malformed_files_are_reported(tmp_path):
    with pytest.raises(ConfigError) as excinfo:
        load_gateway_config(tmp_path / "nope.toml")
    assert problems_of(excinfo) == [f"{(tmp_path / 'nope.toml').resolve()}: file does not exist"]

    bad = tmp_path / "bad.toml"
    bad.write_text("[gateway\nparty_id = 1\n")
    with pytest.raises(ConfigError) as excinfo:
        load_gateway_config(bad)
    (problem,) = problems_of(excinfo)
    assert problem.startswith(f"{bad.resolve()}: not valid TOML")

    with pytest.raises(ConfigError) as excinfo:
        load_partners(tmp_path / "no-partners")
    assert "partners folder does not exist" in problems_of(excinfo)[0]


# -- key file modes -------------------------------------------------------------------
def test_key_file_readable_by_others_is_refused_with_chmod_hint(pair, pki, tmp_path):
    a, _ = pair
    key = tmp_path / "keys" / "sign.key"
    key.parent.mkdir()
    shutil.copyfile(pki / "aa-nsw" / "sign.key", key)
    os.chmod(key, 0o644)
    a.config_path.write_text(a.config_path.read_text().replace(str(pki / "aa-nsw" / "sign.key"), str(key)))
    with pytest.raises(ConfigError) as excinfo:
        load_gateway_config(a.config_path)
    problem = only(problems_of(excinfo), "[security.signing_key]")
    assert problem.startswith(str(a.config_path.resolve()))
    assert "0644" in problem
    assert f"chmod 600 {key}" in problem

    os.chmod(key, 0o600)
    assert load_gateway_config(a.config_path).signing.key_path == key


# -- PMode rules ----------------------------------------------------------------------
def test_duplicate_document_type_in_two_pmodes(pair):
    a, _ = pair
    file = partner_toml(a)
    file.write_text(file.read_text().replace('document_type = "manifest"', 'document_type = "ephyto"'))
    with pytest.raises(ConfigError) as excinfo:
        load_partners(a.home / "partners")
    problem = only(problems_of(excinfo), "[pmode[1].document_type]")
    assert problem.startswith(str(file.resolve()))
    assert "'ephyto'" in problem and "pmode[0]" in problem


def test_encrypt_without_encryption_cert(pair, pki):
    a, _ = pair
    file = partner_toml(a)
    text = re.sub(r"(?m)^encryption_cert = .*\n", "", file.read_text())
    # pmode[0] asks for encryption explicitly; pmode[1..3] get it by default; a fifth opts out.
    text = text.replace('action = "DeliverPhytoCertificate"',
                        'action = "DeliverPhytoCertificate"\nsecurity = { encrypt = true }')
    text += ('\n[[pmode]]\ndocument_type = "aeo"\nservice = "urn:test:service:aeo"\naction = "Share"\n'
             'security = { encrypt = false }\n')
    file.write_text(text)
    with pytest.raises(ConfigError) as excinfo:
        load_partners(a.home / "partners")
    problems = problems_of(excinfo)
    assert "encryption_cert" in only(problems, "[pmode[0].security.encrypt]")
    for i in (1, 2, 3):
        assert "encryption_cert" in only(problems, f"[pmode[{i}].security.encrypt]")
    assert not [p for p in problems if "pmode[4]" in p]
    assert len(problems) == 4, problems

    # Without any encrypting PMode, no encryption certificate is needed.
    file.write_text(text.replace("security = { encrypt = true }", "security = { encrypt = false }")
                    .replace('compress = false', 'compress = false\nsecurity = { encrypt = false }')
                    .replace('action = "DeliverCertificate"', 'action = "DeliverCertificate"\nsecurity = { encrypt = false }'))
    partner = load_partners(a.home / "partners").get("bb-nsw")
    assert partner.encryption_cert is None
    assert not any(p.security.encrypt for p in partner.pmodes)


def test_unsigned_pmode_is_refused(pair):
    a, _ = pair
    file = partner_toml(a)
    file.write_text(file.read_text().replace('action = "SubmitEntrySummary"',
                                             'action = "SubmitEntrySummary"\nsecurity = { sign = false }'))
    with pytest.raises(ConfigError) as excinfo:
        load_partners(a.home / "partners")
    assert "sign = true" in only(problems_of(excinfo), "[pmode[1].security.sign]")


# -- relative paths ---------------------------------------------------------------------
def test_relative_paths_resolve_against_the_config_file(tmp_path, pki, monkeypatch):
    """Every path in gateway.toml and partner.toml is relative to that file, not to the cwd."""
    site = tmp_path / "site"
    certs = site / "certs"
    shutil.copytree(pki, certs)
    conf = site / "conf"
    (conf / "partners" / "bb-nsw").mkdir(parents=True)
    (conf / "gateway.toml").write_text("""
[gateway]
party_id = "AA-NSW"
partners_dir = "partners"
state_dir = "../var"

[listen]
tls = true
cert = "../certs/aa-nsw/tls.crt"
key = "../certs/aa-nsw/tls.key"
client_ca = "../certs/ca/ca.crt"

[security]
signing_key = "../certs/aa-nsw/sign.key"
signing_cert = "../certs/aa-nsw/sign.crt"
encryption_key = "../certs/aa-nsw/enc.key"
encryption_cert = "../certs/aa-nsw/enc.crt"

[database]
url = "sqlite:///../var/db/gw.db"

[nsw.folder]
outbox = "../var/nsw/out"
""")
    (conf / "partners" / "bb-nsw" / "partner.toml").write_text("""
[partner]
party_id = "BB-NSW"
endpoint = "https://127.0.0.1:9/as4"
signing_certs = ["../../../certs/bb-nsw/sign.crt"]
encryption_cert = "../../../certs/bb-nsw/enc.crt"
tls_trust = "../../../certs/ca/ca.crt"

[[pmode]]
document_type = "ephyto"
service = "urn:test:service:sps"
action = "DeliverCertificate"
""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_gateway_config(Path("..") / "site" / "conf" / "gateway.toml")
    site = site.resolve()
    assert config.file == site / "conf" / "gateway.toml"
    assert config.partners_dir == site / "conf" / "partners"
    assert config.state_dir == site / "var"
    assert config.listen.cert == site / "certs" / "aa-nsw" / "tls.crt"
    assert config.listen.client_ca == site / "certs" / "ca" / "ca.crt"
    assert config.signing.key_path == site / "certs" / "aa-nsw" / "sign.key"
    assert config.encryption.cert_path == site / "certs" / "aa-nsw" / "enc.crt"
    assert config.database_url == f"sqlite:///{site / 'var' / 'db' / 'gw.db'}"
    assert config.folder.outbox == site / "var" / "nsw" / "out"
    assert config.folder.inbox == site / "var" / "nsw" / "inbox"   # default under state_dir

    partner = load_partners(config.partners_dir).get("bb-nsw")
    assert partner.signing_certs[0].subject.rfc4514_string().startswith("CN=bb-nsw sign,")
    assert partner.encryption_cert.subject.rfc4514_string().startswith("CN=bb-nsw enc,")
    assert len(partner.tls_trust) == 1
    assert partner.pmodes[0].id == "bb-nsw-ephyto"


# -- swgw checkconfig ---------------------------------------------------------------------
def test_checkconfig_ok(pair):
    a, _ = pair
    result = swgw("checkconfig", "-c", str(a.config_path), check=False)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "AA-NSW" in result.stdout and "bb-nsw" in result.stdout
    assert result.stderr == ""


def test_checkconfig_bad_partner_config_exits_2_with_problems_on_stderr(pair):
    a, _ = pair
    file = partner_toml(a)
    text = file.read_text().replace("https://127.0.0.1", "ftp://127.0.0.1")
    file.write_text(re.sub(r'(?m)^party_id = "BB-NSW"\n', "", text))
    result = swgw("checkconfig", "-c", str(a.config_path), check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert f"{file.resolve()} [partner.endpoint]" in result.stderr
    assert f"{file.resolve()} [partner.party_id]" in result.stderr


def test_checkconfig_bad_gateway_config_exits_2(pair):
    a, _ = pair
    a.config_path.write_text(a.config_path.read_text().replace("[sender]", "[sender]\nconcurency = 2"))
    result = swgw("checkconfig", "-c", str(a.config_path), check=False)
    assert result.returncode == 2
    assert f"{a.config_path.resolve()} [sender.concurency]: unknown key" in result.stderr
    assert "Traceback" not in result.stderr


def test_checkconfig_reports_gateway_and_partner_problems_in_one_run(pair):
    a, _ = pair
    a.config_path.write_text(a.config_path.read_text().replace("[sender]", "[sender]\nconcurency = 2"))
    file = partner_toml(a)
    file.write_text(file.read_text().replace("https://127.0.0.1", "ftp://127.0.0.1"))
    result = swgw("checkconfig", "-c", str(a.config_path), check=False)
    assert result.returncode == 2
    assert "[sender.concurency]" in result.stderr
    assert "[partner.endpoint]" in result.stderr


@pytest.mark.parametrize("top_level, table", [
    ('sender = 5\n', "[sender]"),
    ('nsw = 3\n', "[nsw]"),
    ('nsw = { folder = "x" }\n', "[nsw.folder]"),
], ids=["sender", "nsw", "nsw.folder"])
def test_non_table_sections_are_config_errors(pair, top_level, table):
    a, _ = pair
    text = a.config_path.read_text()
    # Drop the harness's own [nsw.folder] and [sender] tables, whatever their values.
    text = re.sub(r"\[(nsw\.folder|sender)\]\n(?:[a-z_]+ = [^\n]*\n)*", "", text)
    a.config_path.write_text(top_level + text)
    with pytest.raises(ConfigError) as excinfo:
        load_gateway_config(a.config_path)
    assert "expected a table" in only(problems_of(excinfo), table)
