"""Fuzzing the config loader (``swgw checkconfig``: gateway.toml, every partner.toml and the
suite keys): any TOML content and any file-system shape ends in a ConfigError whose problems
name file and key, never in a traceback.

A short deterministic hypothesis run over generated config trees (tests/fuzz/config_gen.py),
the replay of tests/fuzz/corpus/config/, and one test per crash class found.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.config import load_gateway_config
from partners.configfile import ConfigError
from partners.registry import load_partners
from tests.fuzz.config_gen import build_config_env
from tests.fuzz.budget import in_suite
from tests.fuzz.targets import config_target, corpus_files, coverage_files, replay
from tests.harness import swgw

FUZZ = in_suite(max_examples=80)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return build_config_env(tmp_path_factory.mktemp("fuzz-config"))


@pytest.fixture
def tree(env) -> Path:
    """A fresh copy of the valid config tree (gateway.toml, partners/aa-nsw, partners/cc-nsw)."""
    return env.fresh()


@FUZZ
@given(data=st.binary(max_size=300))
def test_any_config_tree_gives_problems_not_a_traceback(env, data):
    config_target(env)(data)


@pytest.mark.parametrize("path", corpus_files("config"), ids=lambda p: p.name)
def test_saved_input_replays(env, path):
    config_target(env)(path.read_bytes())


def test_coverage_corpus_replays(env):
    """What `make fuzz` runs found reaching new code (merged into corpus/config/coverage/)."""
    assert not replay(config_target(env), coverage_files("config"))


def test_the_unchanged_tree_is_valid(env, tree):
    load_gateway_config(tree / "gateway.toml")
    assert sorted(load_partners(tree / "partners").partners) == ["aa-nsw", "cc-nsw"]


def problems_of(loader, *args) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loader(*args)
    return caught.value.problems


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def _set(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


# -- 1. the TOML file itself cannot be read as TOML ---------------------------------------
@pytest.mark.parametrize("content,expected", [
    (b"[gateway]\nparty_id = \"caf\xe9\"\n", "not UTF-8 text (byte 25 is b'\\xe9'); save the file as UTF-8"),
    (b"x = " + b"[" * 3000 + b"]" * 3000 + b"\n", "nested too deeply"),
    (b"x = " + b"{a = " * 400 + b"1" + b"}" * 400 + b"\n", "nested too deeply"),
    (b"x = " + b"1" * 5000 + b"\n", "write numbers with fewer digits"),
])
def test_toml_that_tomllib_cannot_take_is_a_problem(tree, content, expected):
    """UnicodeDecodeError, RecursionError and the int-digits ValueError came out of tomllib."""
    config = tree / "gateway.toml"
    config.write_bytes(content)
    (problem,) = problems_of(load_gateway_config, config)
    assert problem.startswith(f"{config}: ") and expected in problem


@pytest.mark.parametrize("shape,expected", [("directory", "is a directory, expected a TOML file"),
                                            ("loop", "symlink loop"), ("fifo", "is not a regular file")])
def test_a_config_file_that_is_no_file_is_a_problem(tree, shape, expected):
    """IsADirectoryError and ELOOP came out of open(); a FIFO would have blocked it."""
    partner = tree / "partners" / "aa-nsw" / "partner.toml"
    partner.unlink()
    {"directory": lambda: partner.mkdir(), "loop": lambda: os.symlink(partner, partner),
     "fifo": lambda: os.mkfifo(partner)}[shape]()
    (problem,) = problems_of(load_partners, tree / "partners")
    assert problem.startswith(f"{partner}: ") and expected in problem


def test_checkconfig_names_a_looping_config_file(tree):
    config = tree / "gateway.toml"
    config.unlink()
    os.symlink(config, config)
    result = swgw("checkconfig", "--config", str(config), check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert f"{config}: {config} is a symlink loop" in result.stdout + result.stderr


# -- 2. a path value that cannot name a file ----------------------------------------------
@pytest.mark.parametrize("value,expected", [
    ("sign\\u0000.crt", "contains a NUL character"),
    ("x" * 5000, "File name too long"),
    ("LOOP", "symlink loop"),
    ("LOOP/x", "symlink loop"),
])
def test_a_path_that_cannot_be_used_is_a_problem_with_its_key(tree, value, expected):
    """ValueError (NUL), OSError (ENAMETOOLONG) and RuntimeError (symlink loop) came out
    of Path.resolve() and Path.exists()."""
    loop = tree / "loop"
    os.symlink(loop, loop)
    value = value.replace("LOOP", str(loop))
    config = tree / "gateway.toml"
    text = config.read_text()
    start = text.index("signing_cert = ")
    end = text.index("\n", start)
    config.write_text(text[:start] + f'signing_cert = "{value}"' + text[end:])
    problems = problems_of(load_gateway_config, config)
    assert any(p.startswith(f"{config} [security.signing_cert]: ") and expected in p for p in problems), problems


@pytest.mark.parametrize("key", ["signing_certs", "tls_trust", "crls"])
def test_a_path_in_a_partner_list_that_cannot_be_used_is_a_problem(tree, key):
    partner = tree / "partners" / "aa-nsw" / "partner.toml"
    text = partner.read_text()
    if key == "crls":
        text = text.replace("[partner]\n", f'[partner]\nsigning_trust = ["{tree.parent.parent / "pki" / "ca" / "ca.crt"}"]\n'
                            'crls = ["a\\u0000b.crl"]\n', 1)
    else:
        start = text.index(f"{key} = [")
        end = text.index("\n", start)
        text = text[:start] + f'{key} = ["a\\u0000b.pem"]' + text[end:]
    partner.write_text(text)
    problems = problems_of(load_partners, tree / "partners")
    assert any(p.startswith(f"{partner} [partner.{key}]: ") and "NUL" in p for p in problems), problems


def test_a_token_file_that_is_a_directory_or_not_utf8_is_a_problem(tree):
    """read_text() raised IsADirectoryError / UnicodeDecodeError from [nsw.api] token_file."""
    config = tree / "gateway.toml"
    for make, expected in ((lambda p: p.mkdir(mode=0o700), "is not a file"),
                           (lambda p: p.write_bytes(b"\xff" * 20), "cannot be read (it is not UTF-8 text)")):
        token = tree / f"token-{len(expected)}"
        make(token)
        token.chmod(0o700 if token.is_dir() else 0o600)
        text = config.read_text().split("\n[nsw.api]")[0]
        config.write_text(text + f'\n[nsw.api]\nport = 8444\ntoken_file = "{token}"\n')
        problems = problems_of(load_gateway_config, config)
        assert any(p.startswith(f"{config} [nsw.api.token_file]: ") and expected in p for p in problems), problems


# -- 3. values that parse as TOML but not as what the key means ---------------------------
@pytest.mark.parametrize("url", ["https://[::1/as4", "http://[fe80::1%zz/as4", "https://h:99999/as4",
                                 "https://h:0/as4"])
def test_an_endpoint_url_that_does_not_parse_is_a_problem(tree, url):
    """urlparse() raised ValueError (bad IPv6 literal, port out of range) out of the loader."""
    partner = tree / "partners" / "aa-nsw" / "partner.toml"
    text = partner.read_text()
    start = text.index("endpoint = ")
    partner.write_text(text[:start] + f'endpoint = "{url}"' + text[text.index("\n", start):])
    problems = problems_of(load_partners, tree / "partners")
    assert any(p.startswith(f"{partner} [partner.endpoint]: ") for p in problems), problems


def test_a_crl_url_that_does_not_parse_is_a_problem(tree):
    partner = tree / "partners" / "aa-nsw" / "partner.toml"
    ca = tree.parent.parent / "pki" / "ca" / "ca.crt"
    _set(partner, "[partner]\n", f'[partner]\nsigning_trust = ["{ca}"]\ncrls = ["http://[::1/ca.crl"]\n')
    problems = problems_of(load_partners, tree / "partners")
    assert any(p.startswith(f"{partner} [partner.crls]: ") and "not a usable URL" in p for p in problems), problems


def _set_key(tree: Path, table: str, key: str, value: str) -> Path:
    """gateway.toml of ``tree`` with ``key`` of ``[table]`` set to the raw TOML ``value``."""
    config = tree / "gateway.toml"
    text = config.read_text()
    start = text.index(f"{key} = ", text.index(f"[{table}]"))
    config.write_text(text[:start] + f"{key} = {value}" + text[text.index("\n", start):])
    return config


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1" + "0" * 400])
def test_a_number_that_is_no_duration_is_a_problem(tree, value):
    """nan passed every `minimum` check (nan < x is False) and inf made timers that never
    fire; an integer beyond the float range raised OverflowError."""
    config = _set_key(tree, "sender", "timeout", value)
    problems = problems_of(load_gateway_config, config)
    assert any(p.startswith(f"{config} [sender.timeout]: ") for p in problems), problems


@pytest.mark.parametrize("value", ["65536", "99999999999999999999"])
def test_a_port_beyond_65535_is_a_problem(tree, value):
    config = _set_key(tree, "listen", "port", value)
    problems = problems_of(load_gateway_config, config)
    assert any(p.startswith(f"{config} [listen.port]: must be at most 65535") for p in problems), problems
