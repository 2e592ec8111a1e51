"""Large attachments as byte ranges of files (``crypto.content.FileContent``): every step that
touches their octets (MIME, gzip, AES-GCM, digests, the blob store, the outbox reader, the HTTP
body producer) reads and writes them in chunks and gives the same octets as the in-memory path.

The spool threshold is lowered so that a few hundred kilobytes take the file path; the real
daemons carry a payload past the real threshold in tests/test_e2e_daemons.py.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import zlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from twisted.internet import task
from twisted.internet.testing import StringTransport

from crypto import content
from crypto.algorithms import DataEncryptionAlgorithm
from crypto.content import FileContent
from crypto.errors import DecryptionError
from crypto.wssec_common import Part
from crypto.wssec_decrypt import decrypt_parts
from crypto.wssec_encrypt import encrypt_parts
from crypto.wssec_primitives import decrypt_content, encrypt_content
from crypto.wssec_sign import sign_message
from crypto.wssec_verify import verify_message
from gateway.as4 import EbmsException, gzip_compress, gzip_decompress
from gateway.as4.mime import MimePart, decode_message, encode_multipart
from gateway.config import FolderConnectorConfig
from gateway.connectors.folder import FolderConnector, atomic_write
from gateway.store.blobs import BlobStore
from gateway.store.store import MessageStore
from gateway.transport.producer import ContentProducer
from partners.xmldoc import DocumentHasDtd, DocumentNotWellFormed, check_well_formed
from tests.crypto_helpers import make_envelope, reparse

THRESHOLD = 64 * 1024
AES = DataEncryptionAlgorithm.AES128_GCM


@pytest.fixture(autouse=True)
def small_spool(monkeypatch, tmp_path):
    """Spool anything above 64 KiB, into this test's directory, with 4 KiB MIME scan windows
    (so boundaries fall across window edges)."""
    monkeypatch.setattr(content, "SPOOL_THRESHOLD", THRESHOLD)
    monkeypatch.setattr(content, "CHUNK", 4096)
    monkeypatch.setattr(content, "spool_dir", str(tmp_path))


def in_file(data: bytes, prefix: bytes = b"") -> FileContent:
    """``data`` as a range of an anonymous file, behind ``prefix`` (a range need not start at 0)."""
    fh = tempfile.TemporaryFile()
    fh.write(prefix + data)
    fh.flush()
    return FileContent(fh, len(prefix), len(data))


def octets(size: int, seed: int = 1) -> bytes:
    """Incompressible-looking, reproducible bytes (CRLF and dashes included, as MIME parsing dreads)."""
    out, block = bytearray(), hashlib.sha256(bytes([seed])).digest()
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block + b"\r\n--"
    return bytes(out[:size])


# -- FileContent and the spool ----------------------------------------------------------

def test_file_content_reads_its_range_only():
    data = octets(300_000)
    fc = in_file(data, prefix=b"x" * 1000)
    assert len(fc) == len(data)
    assert b"".join(fc.chunks(7000)) == data
    assert fc.read_at(299_990, 100) == data[299_990:]
    assert fc.read_at(400_000, 10) == b""
    assert content.as_bytes(fc.sub(10, 20)) == data[10:30]
    assert content.hexdigest(fc) == hashlib.sha256(data).hexdigest()
    assert content.digest(fc, "sha512") == hashlib.sha512(data).digest()


def test_file_content_that_ends_early_is_an_error_not_short_data():
    fc = in_file(b"short")
    with pytest.raises(OSError, match="ends early"):
        content.as_bytes(FileContent(fc.file, 0, 100))


def test_spool_writer_stays_in_memory_until_the_threshold(tmp_path):
    small = content.SpoolWriter()
    small.write(b"a" * THRESHOLD)
    assert small.result() == b"a" * THRESHOLD
    large = content.SpoolWriter()
    for _ in range(3):
        large.write(b"b" * THRESHOLD)
    result = large.result()
    assert isinstance(result, FileContent) and len(result) == 3 * THRESHOLD
    assert content.as_bytes(result) == b"b" * (3 * THRESHOLD)
    assert os.listdir(tmp_path) == []       # anonymous: nothing to clean up after a crash


# -- MIME -------------------------------------------------------------------------------

SOAP = b"<S12:Envelope xmlns:S12='http://www.w3.org/2003/05/soap-envelope'/>"


@pytest.mark.parametrize("size", [THRESHOLD + 1, 200_000, 4096 * 50 - 3, 4096 * 50 + 40])
def test_mime_from_a_spooled_body_gives_the_octets_of_the_in_memory_decode(size):
    big, small = octets(size), octets(500, seed=2)
    parts = [MimePart("big@test", "application/octet-stream", in_file(big)),
             MimePart("small@test", "application/xml", small)]
    ctype, body = encode_multipart(SOAP, parts)
    assert isinstance(body, FileContent)          # written to a spool file, not joined in memory
    wire = content.as_bytes(body)

    soap_mem, att_mem = decode_message(ctype, wire)
    soap_file, att_file = decode_message(ctype, in_file(wire, prefix=b"HTTP/1.1 junk before"))
    assert soap_mem == soap_file == SOAP
    assert [a.content_id for a in att_file] == ["big@test", "small@test"]
    assert isinstance(att_file[0].data, FileContent)    # a range of the body: no copy
    assert isinstance(att_file[1].data, bytes)
    for mem, spooled in zip(att_mem, att_file):
        assert content.as_bytes(spooled.data) == mem.data
    assert att_mem[0].data == big and att_mem[1].data == small


def test_mime_base64_part_of_a_spooled_body_is_decoded():
    import base64
    big = octets(THRESHOLD * 2)
    encoded = base64.encodebytes(big)
    wire = (b"--B\r\nContent-Type: application/soap+xml\r\nContent-ID: <root>\r\n\r\n" + SOAP + b"\r\n"
            b"--B\r\nContent-Type: application/octet-stream\r\nContent-ID: <p@t>\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"\r\n--B--\r\n")
    ctype = 'multipart/related; boundary="B"; type="application/soap+xml"; start="<root>"'
    _soap, (part,) = decode_message(ctype, in_file(wire))
    assert content.as_bytes(part.data) == big


def test_mime_boundary_inside_a_spooled_attachment_is_redrawn_or_refused():
    big = octets(THRESHOLD * 2) + b"\r\n--fixedboundary\r\n" + octets(100)
    with pytest.raises(ValueError, match="occurs inside"):
        encode_multipart(SOAP, [MimePart("p@t", "application/octet-stream", in_file(big))],
                         boundary="fixedboundary")


def test_spooled_body_without_its_closing_boundary_is_refused():
    ctype, body = encode_multipart(SOAP, [MimePart("p@t", "application/octet-stream", in_file(octets(200_000)))])
    wire = content.as_bytes(body)
    cut = wire[:len(wire) // 2]
    with pytest.raises(EbmsException) as memory:
        decode_message(ctype, cut)
    with pytest.raises(EbmsException) as spooled:
        decode_message(ctype, in_file(cut))
    assert spooled.value.code == memory.value.code == "EBMS:0007"


# -- gzip -------------------------------------------------------------------------------

def test_gzip_octets_do_not_depend_on_where_the_payload_is():
    data = octets(3 << 20) + b"A" * 250_000
    packed = gzip_compress(in_file(data))
    assert isinstance(packed, FileContent)
    wire = content.as_bytes(packed)
    assert wire == gzip_compress(data)          # the evidence export rebuilds it from bytes
    assert gzip.decompress(wire) == data and zlib.decompress(wire, 31) == data    # one gzip member
    assert wire[4:8] == b"\0\0\0\0"              # mtime 0: reproducible
    assert content.as_bytes(gzip_decompress(packed, max_size=len(data))) == data


def test_gunzip_of_a_spooled_payload_spools_its_output():
    data = b"manifest line\n" * 50_000
    packed = in_file(gzip.compress(data) + gzip.compress(b"tail"))   # two members
    out = gzip_decompress(packed, max_size=len(data) + 4)
    assert isinstance(out, FileContent) and content.as_bytes(out) == data + b"tail"


def test_gunzip_of_a_spooled_bomb_stops_at_the_cap():
    bomb = in_file(gzip.compress(b"\0" * (64 << 20), compresslevel=9))
    with pytest.raises(EbmsException) as err:
        gzip_decompress(bomb, max_size=1 << 20)
    assert err.value.code == "EBMS:0303" and "exceeds the limit" in err.value.error.description


def test_gunzip_of_spooled_trailing_garbage_is_refused():
    packed = in_file(gzip.compress(octets(THRESHOLD * 2)) + b"garbage")
    with pytest.raises(EbmsException, match="trailing garbage"):
        gzip_decompress(packed, max_size=1 << 30)


# -- AES-GCM ----------------------------------------------------------------------------

def test_streamed_encryption_is_standard_aes_gcm():
    key, data = AESGCM.generate_key(128), octets(500_000)
    sealed = encrypt_content(AES, key, in_file(data))
    assert isinstance(sealed, FileContent)
    wire = content.as_bytes(sealed)
    assert AESGCM(key).decrypt(wire[:12], wire[12:], None) == data     # the one-shot AEAD agrees
    opened = decrypt_content(AES, key, in_file(wire))
    assert isinstance(opened, FileContent) and content.as_bytes(opened) == data
    one_shot = encrypt_content(AES, key, data)
    assert content.as_bytes(decrypt_content(AES, key, in_file(one_shot))) == data


@pytest.mark.parametrize("where", [20, 250_000, -1])
def test_streamed_decryption_of_tampered_ciphertext_gives_no_plaintext(where):
    key, data = AESGCM.generate_key(128), octets(500_000)
    wire = bytearray(content.as_bytes(encrypt_content(AES, key, in_file(data))))
    wire[where] ^= 1
    with pytest.raises(DecryptionError):
        decrypt_content(AES, key, in_file(bytes(wire)))
    with pytest.raises(DecryptionError):
        decrypt_content(AES, AESGCM.generate_key(128), in_file(bytes(wire)))


def test_signed_and_encrypted_file_attachment_round_trips(signer, recipient):
    data = octets(400_000)
    envelope = make_envelope()
    parts = [Part("payload-1@sw.example", "application/octet-stream", in_file(data)),
             Part("payload-2@sw.example", "application/xml", b"<small/>")]
    sign_message(envelope, parts, signer.key, signer.cert)
    cipher_parts = encrypt_parts(envelope, parts, recipient.cert)
    assert isinstance(cipher_parts[0].data, FileContent)
    received = reparse(envelope)
    wire = [Part(p.content_id, p.mime_type, in_file(content.as_bytes(p.data))) if i == 0 else p
            for i, p in enumerate(cipher_parts)]
    plain = decrypt_parts(received, wire, recipient.key)
    assert content.as_bytes(plain[0].data) == data and plain[1].data == b"<small/>"
    assert verify_message(received, plain, [signer.cert]).signed_part_ids == {p.content_id for p in parts}
    altered = bytearray(data)
    altered[123_456] ^= 1
    with pytest.raises(Exception, match="altered"):
        verify_message(received, [Part(plain[0].content_id, plain[0].mime_type, in_file(bytes(altered))),
                                  plain[1]], [signer.cert])


# -- well-formedness of a document too large for a tree ------------------------------------

def test_check_well_formed_in_chunks():
    doc = b"<certificate><data>" + b"QUJD" * 100_000 + b"</data></certificate>"
    check_well_formed(in_file(doc).chunks(4096))
    with pytest.raises(DocumentNotWellFormed, match="not well-formed"):
        check_well_formed(in_file(doc[:-3]).chunks(4096))
    with pytest.raises(DocumentHasDtd):
        check_well_formed([b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'])
    with pytest.raises(DocumentNotWellFormed, match="nested deeper"):
        check_well_formed([b"<a>" * 300, b"</a>" * 300], max_depth=256)


# -- the blob store, the folder, the HTTP body -----------------------------------------------

def test_large_blob_is_stored_and_read_back_as_a_file(tmp_path):
    store = MessageStore(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path / "blobs")
    try:
        data = octets(BlobStore(tmp_path / "unused", store.engine).inline_max + 1000)
        digest = store.blobs.put(in_file(data))
        assert digest == hashlib.sha256(data).hexdigest()
        assert store.blobs.where(digest).startswith("file ")
        back = store.blobs.content(digest)
        assert isinstance(back, FileContent) and content.as_bytes(back) == data
        assert store.blobs.state(digest) == "ok"
        with open(store.blobs.path(digest), "r+b") as fh:
            fh.seek(200_000)
            fh.write(b"X")
        assert store.blobs.state(digest) == "corrupt"
        small = store.blobs.put(b"<small/>")
        assert store.blobs.content(small) == b"<small/>"
    finally:
        store.close()


def test_atomic_write_streams_a_file_content(tmp_path):
    data = octets(300_000)
    atomic_write(tmp_path / "inbox" / "doc.xml", in_file(data))
    assert (tmp_path / "inbox" / "doc.xml").read_bytes() == data
    assert [p.name for p in (tmp_path / "inbox").iterdir()] == ["doc.xml"]


def test_content_producer_writes_the_range_in_chunks_and_obeys_pausing():
    data = octets(300_000)
    turns: list = []
    # one chunk per cooperator tick, ticks run by hand
    cooperator = task.Cooperator(terminationPredicateFactory=lambda: lambda: True, scheduler=turns.append)

    def turn() -> None:
        if turns:
            turns.pop(0)()

    producer = ContentProducer(in_file(data, prefix=b"zzz"), cooperator)
    assert producer.length == len(data)
    consumer = StringTransport()
    finished: list = []
    producer.startProducing(consumer).addCallback(finished.append)
    turn()
    written = len(consumer.value())
    assert 0 < written < len(data)
    producer.pauseProducing()
    turn()
    assert len(consumer.value()) == written and not finished
    producer.resumeProducing()
    for _ in range(100):
        if finished:
            break
        turn()
    assert consumer.value() == data and finished == [None]


def test_a_whole_spool_file_becomes_its_blob_by_a_link_and_a_range_is_copied(tmp_path):
    store = MessageStore(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path / "blobs")
    try:
        data = octets(store.blobs.inline_max + 5000)
        writer = content.SpoolWriter()
        writer.write(data)
        spool = writer.result()
        digest = store.blobs.put(spool)
        blob = store.blobs.path(digest)
        assert blob.read_bytes() == data and store.blobs.state(digest) == "ok"
        if hasattr(os, "O_TMPFILE"):           # Linux: the spool file got a name
            assert os.stat(blob).st_ino == os.fstat(spool.file.fileno()).st_ino
        ranged = in_file(data[:-1], prefix=b"header")    # part of a file: copied, by the kernel
        other = store.blobs.put(ranged)
        assert store.blobs.path(other).read_bytes() == data[:-1]
        assert os.stat(store.blobs.path(other)).st_ino != os.fstat(ranged.file.fileno()).st_ino
        assert sorted(p.name for p in blob.parent.parent.rglob("*") if p.is_file()) == sorted([digest, other])
    finally:
        store.close()


def test_write_into_appends_a_range_after_what_was_written(tmp_path):
    data = octets(200_000)
    with open(tmp_path / "out", "wb") as out:
        out.write(b"head:")
        content.write_into(in_file(data, prefix=b"skip me"), out)
        out.write(b":tail")
    assert (tmp_path / "out").read_bytes() == b"head:" + data + b":tail"


def test_a_large_inbound_document_reaches_the_inbox_as_a_read_only_link_to_its_blob(tmp_path):
    store = MessageStore(f"sqlite:///{tmp_path / 'gw.db'}", tmp_path / "blobs")
    try:
        data = octets(THRESHOLD * 20)
        writer = content.SpoolWriter()
        writer.write(data)
        digest = store.blobs.put(writer.result())
        nsw = tmp_path / "nsw"
        folder = FolderConnector(FolderConnectorConfig(nsw / "outbox", nsw / "inbox", nsw / "reports", 1.0))
        doc = folder.deliver(partner_id="bb-nsw", sender_party="BB", message_id="m1@bb", reference="R",
                             document_type="test-cert", received_at="2026-12-04T00:00:00Z",
                             document=store.blob_content(digest), mime_type="application/xml",
                             conversation_id=None, ref_to_message_id=None)
        assert doc.read_bytes() == data
        if hasattr(os, "O_TMPFILE"):
            assert os.stat(doc).st_ino == os.stat(store.blobs.path(digest)).st_ino    # written once
            assert os.stat(doc).st_mode & 0o222 == 0                                   # not to be edited
        again = folder.deliver(partner_id="bb-nsw", sender_party="BB", message_id="m1@bb", reference="R",
                               document_type="test-cert", received_at="2026-12-04T00:00:00Z",
                               document=store.blob_content(digest), mime_type="application/xml",
                               conversation_id=None, ref_to_message_id=None)      # a redelivery
        assert again == doc and doc.read_bytes() == data
        assert sorted(p.name for p in doc.parent.iterdir()) == sorted([doc.name, doc.name + ".meta.json"])
        doc.unlink()                                     # the NSW takes it: the stored copy stays
        assert store.blobs.state(digest) == "ok"
        small = folder.deliver(partner_id="bb-nsw", sender_party="BB", message_id="m2@bb", reference="S",
                               document_type="test-cert", received_at="2026-12-04T00:00:00Z",
                               document=b"<small/>", mime_type="application/xml",
                               conversation_id=None, ref_to_message_id=None)
        assert small.read_bytes() == b"<small/>" and os.stat(small).st_mode & 0o200
    finally:
        store.close()
