"""The fuzz targets: each turns one ``bytes`` input into a call of the code under test and
raises only when the code breaks its contract (an uncaught exception of its own, or a
:class:`ContractViolation`).

=========  ====================================================  =============================
target     calls                                                 may only raise (and answer)
=========  ====================================================  =============================
mime       ``as4.decode_message``                                EbmsException
header     ``as4.parse_xml`` + ``parse_envelope`` + payloads      XmlRejected, EbmsException
wssec      ``decrypt_parts`` + ``verify_message``                SecurityError
inbound    ``InboundPipeline.process`` (the listener's path)     nothing: a Response, 200/413
config     ``swgw checkconfig`` (gateway.toml + partners)        ConfigError
=========  ====================================================  =============================

Every error that would reach a partner must also fit in a (well-formed) ebMS error signal.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
from collections.abc import Callable
from pathlib import Path

from lxml import etree

from crypto import Part, SecurityError, TrustConfig, decrypt_parts, verify_message
from crypto.keys import load_certificate
from gateway import as4
from gateway.as4.errors import ERROR_CATALOGUE
from partners.configfile import ConfigError
from tests.fuzz.config_gen import ConfigEnv, write_tree
from tests.fuzz.draw import Draw
from tests.fuzz.inbound_env import InboundEnv
from tests.fuzz.mutate import NS, mutate_bytes, mutate_message, mutate_tree, serialize

TARGETS = ("mime", "header", "wssec", "inbound", "config")
PLAIN_DOCUMENT = b'<?xml version="1.0" encoding="UTF-8"?>\n<doc xmlns="urn:test:doc"><item>fuzz</item></doc>\n'


class ContractViolation(AssertionError):
    """The code under test returned or raised something its contract does not allow."""


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ContractViolation(message)


def check_error_fits_signal(error: as4.EbmsError) -> None:
    """The error must be one of the catalogue's and serialise into an error signal."""
    _require(error.error_code in ERROR_CATALOGUE, f"unknown error code {error.error_code}")
    _require(bool(error.description), f"{error.error_code} without a description")
    signal = as4.ErrorSignal(message_id="fuzz@check", timestamp=dt.datetime.now(dt.timezone.utc),
                             ref_to_message_id=error.ref_to_message_id, errors=(error,))
    etree.tostring(as4.build_error(signal))


def _pick_seed(d: Draw, env: InboundEnv):
    return d.pick(env.seeds)


def mime_target(env: InboundEnv) -> Callable[[bytes], None]:
    def one_input(data: bytes) -> None:
        d = Draw(data)
        ctype, body = mutate_message(d, _pick_seed(d, env), xml=False)
        try:
            soap, parts = as4.decode_message(ctype, body, max_parts=8)
        except as4.EbmsException as exc:
            check_error_fits_signal(exc.error)
            return
        ids = [p.content_id for p in parts]
        _require(isinstance(soap, bytes), "SOAP part is not bytes")
        _require(len(parts) <= 8, f"{len(parts)} attachments returned past max_parts=8")
        _require(all(ids) and len(set(ids)) == len(ids), f"attachment Content-IDs empty or repeated: {ids}")
    return one_input


def header_target(env: InboundEnv) -> Callable[[bytes], None]:
    def one_input(data: bytes) -> None:
        d = Draw(data)
        seed = _pick_seed(d, env)
        root = etree.fromstring(seed.soap)
        cids = [p.content_id for p in seed.attachments]
        for _ in range(1 + d.below(5)):
            mutate_tree(d, root, cids, focus=d.pick([f"{{{NS['eb']}}}Messaging", None]))
        soap = serialize(d, root)
        for _ in range(d.below(3) if d.below(4) == 0 else 0):
            soap = mutate_bytes(d, soap)
        try:
            envelope = as4.parse_xml(soap, max_depth=64)
        except as4.XmlRejected as exc:
            check_error_fits_signal(as4.make_error("EBMS:0009", str(exc)))
            return
        try:
            parsed = as4.parse_envelope(envelope)
            um = parsed.user_message
            if um is None:
                return
            _require(as4.parse_user_message(parsed.messaging) == um, "parse_user_message disagrees with parse_envelope")
            as4.check_attachment_refs(um, set(cids))
            attachments = {c: ("application/gzip", as4.gzip_compress(PLAIN_DOCUMENT)) for c in cids}
            as4.resolve_payloads(um, attachments, parsed.body, max_decompressed=1024 * 1024)
        except as4.EbmsException as exc:
            check_error_fits_signal(exc.error)
    return one_input


def wssec_target(env: InboundEnv) -> Callable[[bytes], None]:
    anchors = (load_certificate(env.pki / "ca" / "ca.crt"),)

    def one_input(data: bytes) -> None:
        d = Draw(data)
        seed = _pick_seed(d, env)
        root = etree.fromstring(seed.soap)
        cids = [p.content_id for p in seed.attachments]
        focus = d.pick([f"{{{NS['wsse']}}}Security", f"{{{NS['xenc']}}}EncryptedKey", f"{{{NS['ds']}}}KeyInfo",
                        f"{{{NS['ds']}}}SignedInfo", f"{{{NS['xenc']}}}AgreementMethod"])
        for _ in range(1 + d.below(5)):
            mutate_tree(d, root, cids, focus=focus)
        parts = [Part(p.content_id, p.content_type, p.data) for p in seed.attachments]
        if parts and d.below(4) == 0:
            i = d.below(len(parts))
            old = parts[i]
            parts[i] = d.pick([Part(old.content_id, "text/xml", old.data), Part(old.content_id, old.mime_type, b""),
                               Part(old.content_id, old.mime_type, mutate_bytes(d, old.data)),
                               Part(parts[0].content_id, old.mime_type, old.data)])
        try:
            envelope = as4.parse_xml(serialize(d, root), max_depth=64)
        except as4.XmlRejected:
            return
        policy = env.security_policies[seed.name]
        try:
            plain = decrypt_parts(envelope, parts, env.decryption_keys[seed.name], policy)
            trust = TrustConfig(anchors=anchors) if d.bool() else None
            verify_message(envelope, plain, env.trusted[seed.name], policy, trust=trust)
        except SecurityError as exc:
            check_error_fits_signal(as4.make_error("EBMS:0101", str(exc)))
    return one_input


def check_response(response) -> None:
    """What the listener sends: a signed receipt or signed ebMS error (200), or 413."""
    from gateway.inbound import Response
    _require(isinstance(response, Response), f"process() returned {type(response).__name__}")
    if response.code == 413:
        return
    _require(response.code == 200, f"HTTP {response.code} answer")
    envelope = as4.parse_xml(response.body)
    parsed = as4.parse_envelope(envelope)
    _require(envelope.find(f".//{{{NS['wsse']}}}Security/{{{NS['ds']}}}Signature") is not None, "answer is not signed")
    if parsed.error_signal is not None:
        for error in parsed.error_signal.errors:
            _require(error.error_code in ERROR_CATALOGUE and bool(error.description), f"bad error {error}")
    else:
        _require(parsed.receipt is not None, "answer is neither a receipt nor an error signal")


def inbound_target(env: InboundEnv) -> Callable[[bytes], None]:
    def one_input(data: bytes) -> None:
        d = Draw(data)
        ctype, body = mutate_message(d, _pick_seed(d, env))
        check_response(env.pipeline.process(ctype, body))
    return one_input


def config_target(env: ConfigEnv) -> Callable[[bytes], None]:
    from gateway.cli import cmd_checkconfig

    def one_input(data: bytes) -> None:
        config = write_tree(Draw(data), env)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                cmd_checkconfig(argparse.Namespace(config=str(config)))
        except ConfigError as exc:
            _require(bool(exc.problems), "ConfigError without problems")
            for problem in exc.problems:
                _require(isinstance(problem, str) and ": " in problem, f"problem without file/key: {problem!r}")
    return one_input


def make_target(name: str, workdir: Path, pki: Path | None = None):
    """(one_input, close) for target ``name``, its environment built under ``workdir``."""
    if name == "config":
        from tests.fuzz.config_gen import build_config_env
        return config_target(build_config_env(workdir, pki)), lambda: None
    from tests.fuzz.inbound_env import build_env
    env = build_env(workdir, pki)
    factory = {"mime": mime_target, "header": header_target, "wssec": wssec_target, "inbound": inbound_target}[name]
    return factory(env), env.close


def corpus_dir(name: str) -> Path:
    return Path(__file__).resolve().parent / "corpus" / name


def corpus_files(name: str) -> list[Path]:
    """Every saved input of target ``name`` (seeds and crash reproducers), sorted by name."""
    folder = corpus_dir(name)
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def coverage_files(name: str) -> list[Path]:
    """The merged inputs of ``make fuzz`` runs that reached new code (``-merge=1`` into
    ``tests/fuzz/corpus/<name>/coverage/``): replayed in the suite as one test per target."""
    folder = corpus_dir(name) / "coverage"
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def replay(one_input: Callable[[bytes], None], files: list[Path]) -> list[str]:
    """Run every file through ``one_input``; one line per file that broke the contract."""
    failures = []
    for path in files:
        try:
            one_input(path.read_bytes())
        except Exception as exc:  # noqa: BLE001 - every failure is reported, with its file
            failures.append(f"{'/'.join(path.parts[-3:])}: {type(exc).__name__}: {exc}")
    return failures

