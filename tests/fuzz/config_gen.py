"""Config trees for the config-loader fuzz target: valid ``gateway.toml`` and
``partner.toml`` documents with drawn changes of the right shape and the wrong leaves.

The loader must turn every such tree into a :class:`ConfigError` naming file and key (or
accept it); a traceback is a bug. The generator knows the keys each table has, so most
changes hit a key the loader reads: wrong types (strings where tables are expected, lists
where numbers are), huge numbers, NaN and infinities, dates, paths to directories, to
nothing, to undecodable or empty files, with NUL bytes or too long for the OS, symlink
loops, URLs that do not parse, nested garbage; and the files themselves replaced by
directories, undecodable bytes or raw fuzzer bytes.
"""
from __future__ import annotations

import copy
import datetime as dt
import math
import os
import re
import shutil
import tomllib
from dataclasses import dataclass
from pathlib import Path

from crypto.devpki import ensure_ca, ensure_party
from tests.fuzz.draw import Draw
from tests.harness import add_partner, write_pair

#: cc-nsw's endpoint port: nothing is ever sent to it here (the discard port).
UNUSED_PORT = 9

GATEWAY_KEYS = {
    "gateway": ["party_id", "party_id_type", "partners_dir", "state_dir"],
    "listen": ["host", "port", "tls", "cert", "key", "client_ca", "max_message_bytes", "max_parts",
               "max_decompressed_bytes", "max_xml_depth"],
    "security": ["signing_key", "signing_cert", "encryption_key", "encryption_cert", "eddsa", "ecdsa",
                 "eddsa.signing_key", "eddsa.signing_cert", "eddsa.encryption_key", "eddsa.encryption_cert"],
    "tls_client": ["tls_key", "tls_cert", "ca"],
    "database": ["url"],
    "nsw": ["folder", "folder.outbox", "folder.inbox", "folder.reports", "folder.poll_interval", "api",
            "api.host", "api.port", "api.tls", "api.cert", "api.key", "api.client_ca", "api.token_file",
            "api.max_document_bytes"],
    "sender": ["poll_interval", "timeout", "concurrency"],
    "documents": ["sign", "sign.eco", "sign.eco.key", "sign.eco.cert", "sign.bogus"],
    "evidence": ["tsa_url", "tsa_certs", "ca_certs", "tsa_timeout", "timestamp_interval", "retention_days",
                 "purge_interval"],
}
PARTNER_KEYS = {
    "partner": ["party_id", "party_id_type", "endpoint", "signing_certs", "encryption_cert", "tls_trust",
                "issuing_authorities", "tls_client_certs", "signing_trust", "crls", "id", "country"],
    "pmode": ["id", "document_type", "agreement", "agreement_type", "service", "service_type", "action",
              "initiator_role", "responder_role", "mime_type", "compress", "security", "security.suite",
              "security.sign", "security.encrypt", "security.allow_unsigned", "retry", "retry.max_attempts",
              "retry.initial_interval", "retry.multiplier", "retry.max_interval", "retry.max_age",
              "document_signature"],
}


@dataclass
class ConfigEnv:
    """A valid receiver config tree (two partners, one on a 2.0 suite) to copy and break."""

    root: Path
    base: Path                         # folder holding gateway.toml and partners/
    gateway: dict
    partners: dict[str, dict]
    files: dict[str, Path]             # named special files the generator points paths at
    counter: int = 0

    def fresh(self) -> Path:
        """A new copy of the valid tree for one input."""
        previous = self.root / "runs" / f"run{self.counter}"
        if previous.exists():
            shutil.rmtree(previous)
        self.counter += 1
        target = self.root / "runs" / f"run{self.counter}"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(self.base, target, symlinks=True)
        return target


def small_pki(root: Path) -> Path:
    """A dev PKI with 1024-bit RSA keys: the loader reads every private key (twice), and
    cryptography's RSA key check makes a 2048-bit key cost ~20 ms, a 1024-bit one ~3 ms.
    Key strength is not what this target is about."""
    ensure_ca(root, bits=1024)
    for party in ("aa-nsw", "bb-nsw"):
        ensure_party(root, party, bits=1024)
    return root


def build_config_env(root: Path, pki: Path | None = None) -> ConfigEnv:
    root.mkdir(parents=True, exist_ok=True)
    pki = pki or small_pki(root / "pki")
    _a, b = write_pair(root / "tree", pki)
    add_partner(b, pki, "cc-nsw", UNUSED_PORT, suite="edelivery-as4-2.0-eddsa")
    special = root / "special"
    special.mkdir(exist_ok=True)
    files = {"dir": special, "empty": special / "empty.pem", "latin1": special / "latin1.txt",
             "garbage": special / "garbage.pem", "loop": special / "loop", "cert": pki / "aa-nsw" / "sign.crt",
             "key": pki / "aa-nsw" / "sign.key", "ca": pki / "ca" / "ca.crt", "eddsa_key": None}
    files["empty"].write_bytes(b"")
    files["latin1"].write_bytes(b"\xff\xfe caf\xe9 \x00\n")
    files["garbage"].write_bytes(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    if not files["loop"].is_symlink():
        os.symlink(files["loop"], files["loop"])
    eddsa = [p for p in (pki / "bb-nsw").iterdir() if "ed25519" in p.name and p.suffix == ".key"]
    files["eddsa_key"] = eddsa[0] if eddsa else files["key"]
    gateway = tomllib.loads(b.config_path.read_text())
    partners = {p.name: tomllib.loads((p / "partner.toml").read_text())
                for p in sorted((b.home / "partners").iterdir())}
    return ConfigEnv(root, b.home, gateway, partners, files)


# -- TOML text ---------------------------------------------------------------------------
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _key(k: str) -> str:
    return k if _BARE.fullmatch(k) else _string(k)


def _string(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:
            out.append("?")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


class Raw(str):
    """TOML text spliced in as is (values the emitter cannot express, e.g. deep nesting)."""


def toml_value(v) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, (dt.datetime, dt.date, dt.time)):
        return v.isoformat()
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{_key(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(type(v))


def toml_document(doc: dict) -> str:
    """Top-level scalars first, then one ``[table]`` per table and ``[[name]]`` per array item."""
    lines = [f"{_key(k)} = {toml_value(v)}" for k, v in doc.items()
             if not isinstance(v, dict) and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"\n[{_key(k)}]")
            lines += [f"{_key(sk)} = {toml_value(sv)}" for sk, sv in v.items()]
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"\n[[{_key(k)}]]")
                lines += [f"{_key(sk)} = {toml_value(sv)}" for sk, sv in item.items()]
    return "\n".join(lines) + "\n"


# -- values ------------------------------------------------------------------------------
def leaf(d: Draw, env: ConfigEnv, depth: int = 0):
    kind = d.below(12)
    f = env.files
    if kind == 0:
        return d.pick([0, -1, 1, 8, 1023, 65535, 65536, 2**31, 2**63 - 1, -(2**63), 10**18])
    if kind == 1:
        return d.pick([math.nan, math.inf, -math.inf, -0.0, 0.0, 1e308, 1e-300, 0.01, 0.5, 3.0])
    if kind == 2:
        return d.bool()
    if kind == 3:
        return d.pick([dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), dt.date(2024, 1, 1), dt.time(12, 0),
                       dt.datetime(2024, 1, 1)])
    if kind == 4:   # paths worth a traceback or two
        return d.pick([str(f["dir"]), str(f["empty"]), str(f["latin1"]), str(f["garbage"]), str(f["loop"]),
                       str(f["loop"] / "x"), str(f["cert"]), str(f["key"]), str(f["ca"]), str(f["eddsa_key"]),
                       "a\x00b", "x" * 5000, ("d/" * 3000) + "x", "", ".", "/", "/dev/null", "~/x", "nonexistent.pem",
                       "partners", "gateway.toml", "../" * 40, "\u00e9t\u00e9.pem"])
    if kind == 5:
        return d.pick(["", " ", "http://[::1", "https://", "https://h:99999/as4", "ftp://x/y", "http://",
                       "https:///as4", "http://[fe80::1%25eth0]/", "sqlite:///", "sqlite:////", "sqlite:///\x00",
                       "postgresql://[", "SG", "sg", "XX", "edelivery-as4-1.15", "edelivery-as4-2.0-eddsa",
                       "xades", "enveloped", "ephyto", "eco", "test-cert", "bogus", "\ufffd", "A" * 10000])
    if kind == 6 and depth < 3:
        return [leaf(d, env, depth + 1) for _ in range(d.below(4))]
    if kind == 7 and depth < 3:
        return {d.pick(["a", "key", "cert", "suite", "1", "x y"]): leaf(d, env, depth + 1) for _ in range(d.below(3))}
    if kind == 8:                     # deep nesting, balanced or not
        n = 1 + d.below(3000)
        if d.bool():
            return Raw("[" * n + "]" * (n if d.below(4) else 0))
        return Raw("{a = " * n + "1" + "}" * n)
    if kind == 9:
        return Raw(d.pick(["1" * 5000, "0x" + "f" * 3000, "1e99999", "-1e99999", "99999999999999999999",
                           "1979-05-27T07:32:00Z", "00:00:00.999999999", "inf", "-nan"]))
    if kind == 10:
        return d.blob(30).decode("latin-1")
    return [str(f["cert"]), str(f["dir"])] if d.bool() else [str(f["garbage"]), 5]


def _get_table(doc: dict, path: list[str], create: bool) -> dict | None:
    node = doc
    for part in path:
        nxt = node.get(part)
        if isinstance(nxt, list) and nxt and isinstance(nxt[0], dict):
            nxt = nxt[0]
        if not isinstance(nxt, dict):
            if not create:
                return None
            nxt = node[part] = {}
        node = nxt
    return node


def mutate_doc(d: Draw, doc: dict, keys: dict[str, list[str]], env: ConfigEnv) -> None:
    table = d.pick(list(keys))
    op = d.below(8)
    if op <= 2:                       # a leaf of a known key: set it to something drawn
        path = [table, *d.pick(keys[table]).split(".")]
        node = _get_table(doc, path[:-1], create=True)
        if node is not None:
            node[path[-1]] = leaf(d, env)
    elif op == 3:                     # delete a known key
        path = [table, *d.pick(keys[table]).split(".")]
        node = _get_table(doc, path[:-1], create=False)
        if node is not None:
            node.pop(path[-1], None)
    elif op == 4:                     # a whole table becomes a leaf
        doc[table] = leaf(d, env)
    elif op == 5:                     # unknown key somewhere
        node = _get_table(doc, [table], create=True)
        if node is not None:
            node[d.pick(["typo", "Port", "", " ", "é", "a.b"])] = leaf(d, env)
    elif op == 6:                     # array-of-tables shape games
        if table == "pmode" and isinstance(doc.get("pmode"), list):
            pm = doc["pmode"]
            choice = d.below(4)
            if choice == 0 and pm:
                pm.append(copy.deepcopy(d.pick(pm)))
            elif choice == 1:
                doc["pmode"] = []
            elif choice == 2 and pm:
                pm.pop(d.below(len(pm)))
            else:
                doc["pmode"] = [leaf(d, env), *pm]
        else:
            doc[table] = [copy.deepcopy(doc.get(table, {})) if isinstance(doc.get(table), dict) else {}]
    else:                             # drop a whole table
        doc.pop(table, None)


def _special_file(d: Draw, path: Path) -> None:
    """Replace a config file by something that is not a readable TOML file."""
    kind = d.below(4)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    if kind == 0:
        path.mkdir()
    elif kind == 1:
        path.write_bytes(b"\xff\xfe[gateway]\n")
    elif kind == 2:
        os.symlink(path, path)
    # kind 3: missing altogether


def write_tree(d: Draw, env: ConfigEnv) -> Path:
    """A fresh tree with drawn changes; returns its gateway.toml."""
    tree = env.fresh()
    config = tree / "gateway.toml"
    mode = d.below(10)
    if mode == 0:                       # raw fuzzer bytes as one of the files
        target = config if d.bool() else tree / "partners" / d.pick(sorted(env.partners)) / "partner.toml"
        target.write_bytes(d.rest())
        return config
    gateway = copy.deepcopy(env.gateway)
    partners = copy.deepcopy(env.partners)
    for _ in range(d.below(6)):
        if d.bool():
            mutate_doc(d, gateway, GATEWAY_KEYS, env)
        else:
            mutate_doc(d, partners[d.pick(sorted(partners))], PARTNER_KEYS, env)
    config.write_text(toml_document(gateway), "utf-8")
    for name, doc in partners.items():
        (tree / "partners" / name / "partner.toml").write_text(toml_document(doc), "utf-8")
    if mode == 1:
        _special_file(d, d.pick([config, tree / "partners" / d.pick(sorted(partners)) / "partner.toml",
                                 tree / "partners"]))
    elif mode == 2:
        mappings = tree / "partners" / d.pick(sorted(partners)) / "mappings"
        mappings.mkdir(exist_ok=True)
        name = d.pick(["eco.out.xsl", "eco.in.xsl", "x.xsl", "codelists"])
        if d.bool():
            (mappings / name).mkdir(exist_ok=True)
        else:
            (mappings / name).write_bytes(d.blob(200))
    return config
