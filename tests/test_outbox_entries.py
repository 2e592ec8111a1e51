"""Outbox entries that are not regular files, and metadata of the wrong JSON type.

Before: a directory named like the document raised IsADirectoryError, which the poller took
for "the store is not writable" and retried on every poll, forever; a FIFO hung the poller on
``open``; a symbolic link sent whatever file it pointed to; a ``reference`` given as a JSON
object was turned into Python's repr of it and sent. Each is now rejected with its reason in
the poll that finds it, and the entries behind it still go.

One poll is one ``drain_outbox`` call (what ``OutboxPoller`` runs in a worker thread on each
tick), here with the real outbound pipeline, store and folders of an in-process gateway.
"""
from __future__ import annotations

import json
import os
import socket
import threading
from pathlib import Path

import pytest
from twisted.logger import globalLogPublisher

from gateway.connectors.folder import META_SUFFIX, PROCESSING
from gateway.connectors.folder_client import drop_document
from gateway.daemon import Gateway
from gateway.outbox import drain_outbox
from tests.capabilities import without_file_read_override
from tests.harness import ROOT

SAMPLE = (ROOT / "conf" / "samples" / "ephyto-AR-sample.xml").read_bytes()
META = {"partner": "bb-nsw", "document_type": "ephyto"}
POLL_DEADLINE = 60.0          # a poll that has not returned by then is hung, not slow


@pytest.fixture
def errors():
    """Error-level log events the outbox emits (the "store is not writable" line is one)."""
    seen: list[str] = []

    def observer(event):
        if event.get("log_level") is not None and event["log_level"].name in ("error", "critical"):
            seen.append(str(event.get("log_format", "")).format(**{k: v for k, v in event.items()
                                                                     if isinstance(k, str)}))
    globalLogPublisher.addObserver(observer)
    yield seen
    globalLogPublisher.removeObserver(observer)


def poll(gw: Gateway, fifos: list[Path] = ()) -> int:
    """One poll, in a thread so that a poll stuck on an entry fails the test instead of hanging it."""
    result: dict = {}
    worker = threading.Thread(target=lambda: result.update(count=drain_outbox(gw.connector, gw.outbound,
                                                                               gw.party_domain)), daemon=True)
    worker.start()
    worker.join(POLL_DEADLINE)
    if worker.is_alive():
        for fifo in fifos:              # let the stuck open() return, so the thread ends
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        worker.join(POLL_DEADLINE)
        pytest.fail(f"the outbox poll did not return within {POLL_DEADLINE:.0f}s: an entry blocked it")
    return result["count"]


def write_meta(outbox: Path, name: str, meta: dict | None = None) -> None:
    (outbox / (name + META_SUFFIX)).write_text(json.dumps(meta or META))


def queued_references(gw: Gateway) -> list[str | None]:
    return sorted((m.nsw_reference for m in gw.store.list_messages() if m.direction == "out"),
                  key=lambda r: (r is not None, r or ""))


def make_directory(path: Path) -> None:
    path.mkdir()
    (path / "inside.xml").write_bytes(SAMPLE)


def make_symlink(path: Path) -> None:
    secret = path.parent.parent / "not-for-partners.xml"    # outside the outbox, readable by the gateway
    secret.write_bytes(SAMPLE.replace(b"123ABC", b"SECRET"))
    path.symlink_to(secret)


def make_dangling_symlink(path: Path) -> None:
    path.symlink_to(path.parent / "nowhere.xml")


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_socket(path: Path) -> None:
    # A socket's path is limited to about 100 bytes, which pytest's tmp paths can exceed:
    # bind it by a short name in its own directory, with a relative path.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        sock.bind(path.name)
    finally:
        os.chdir(here)
    sock.close()                  # the socket file stays


ENTRIES = {
    "directory": (make_directory, "is a directory"),
    "symbolic link": (make_symlink, "is a symbolic link"),
    "dangling symbolic link": (make_dangling_symlink, "is a symbolic link"),
    "FIFO": (make_fifo, "is a named pipe (FIFO)"),
    "socket": (make_socket, "is a socket"),
}


@pytest.mark.parametrize("kind", list(ENTRIES))
@pytest.mark.parametrize("which", ["document", "metadata"])
def test_an_entry_that_is_not_a_regular_file_is_rejected_within_one_poll(gateway, errors, kind, which):
    outbox = gateway.config.folder.outbox
    make, reason = ENTRIES[kind]
    if which == "document":
        make(outbox / "odd.xml")
        write_meta(outbox, "odd.xml", {**META, "reference": "ODD"})
    else:
        (outbox / "odd.xml").write_bytes(SAMPLE)
        make(outbox / ("odd.xml" + META_SUFFIX))
    drop_document(outbox, "z-fine.xml", SAMPLE, partner="bb-nsw", document_type="ephyto", reference="FINE")

    assert poll(gateway, [outbox / "odd.xml", outbox / PROCESSING / ("odd.xml" + META_SUFFIX)]) == 1
    assert queued_references(gateway) == ["FINE"]          # the entry behind it still went
    error = (outbox / "rejected" / "odd.xml.error.txt").read_text()
    label = "document odd.xml" if which == "document" else "metadata file odd.xml.meta.json"
    assert f"{label} {reason}" in error and "regular files only" in error, error
    assert not errors, errors                              # no "store is not writable", no traceback
    assert gateway.connector.claimed() == [] and not os.path.lexists(outbox / "odd.xml")
    assert os.path.lexists(outbox / "rejected" / "odd.xml")

    assert poll(gateway) == 0                              # nothing left to retry
    assert queued_references(gateway) == ["FINE"] and not errors


def test_an_unreadable_document_is_rejected_within_one_poll(gateway, errors):
    outbox = gateway.config.folder.outbox
    drop_document(outbox, "locked.xml", SAMPLE, partner="bb-nsw", document_type="ephyto", reference="LOCKED")
    os.chmod(outbox / "locked.xml", 0)
    # As root (CI), the poll runs without root's power to read any file: its thread starts
    # inside the block, with the capabilities cleared (tests/capabilities.py).
    with without_file_read_override():
        assert poll(gateway) == 0
    error = (outbox / "rejected" / "locked.xml.error.txt").read_text()
    assert "document locked.xml cannot be read by the gateway (permission denied)" in error
    assert "read access" in error and not errors and gateway.connector.claimed() == []


def test_a_directory_whose_name_is_already_in_rejected_is_still_set_aside(gateway, errors):
    """An earlier rejected file of the same name must not make the move fail (and the claim stick)."""
    outbox = gateway.config.folder.outbox
    drop_document(outbox, "again.xml", b"<not-closed>", partner="bb-nsw", document_type="ephyto")
    assert poll(gateway) == 0
    assert (outbox / "rejected" / "again.xml").is_file()
    make_directory(outbox / "again.xml")
    write_meta(outbox, "again.xml")
    assert poll(gateway) == 0
    assert "is a directory" in (outbox / "rejected" / "again.xml.error.txt").read_text()
    assert not outbox.joinpath("again.xml").exists() and gateway.connector.claimed() == []
    kept = [p for p in (outbox / "rejected").iterdir() if p.name.startswith("again.xml.") and p.is_dir()]
    assert len(kept) == 1 and (kept[0] / "inside.xml").exists()     # kept, not deleted
    assert poll(gateway) == 0 and not errors


def test_a_directory_dropped_while_its_name_is_still_claimed_waits_one_poll(gateway, errors):
    """A crash left ``x.xml`` claimed; the NSW then drops a directory metadata of the same name."""
    outbox = gateway.config.folder.outbox
    drop_document(outbox, "x.xml", SAMPLE, partner="bb-nsw", document_type="ephyto", reference="X-1")
    assert gateway.connector.claim_new() == ["x.xml"]            # ... and the daemon dies here
    make_directory(outbox / ("x.xml" + META_SUFFIX))
    assert poll(gateway) == 1                                     # the resumed claim goes
    assert poll(gateway) == 0                                     # then the directory is rejected
    assert "metadata file x.xml.meta.json is a directory" in (outbox / "rejected" / "x.xml.error.txt").read_text()
    assert queued_references(gateway) == ["X-1"] and gateway.connector.claimed() == [] and not errors


@pytest.mark.parametrize("key, value, words", [
    ("reference", {"id": "KE-1"}, "reference must be a JSON string (or null), but it is an object"),
    ("reference", ["KE-1"], "reference must be a JSON string (or null), but it is an array"),
    ("reference", 12345, "reference must be a JSON string (or null), but it is a number"),
    ("reference", True, "reference must be a JSON string (or null), but it is a boolean"),
    ("partner", {"id": "bb-nsw"}, "lacks partner as a JSON string: it is an object"),
    ("document_type", ["ephyto"], "lacks document_type as a JSON string: it is an array"),
])
def test_metadata_of_the_wrong_json_type_is_refused_not_stringified(gateway, errors, key, value, words):
    outbox = gateway.config.folder.outbox
    (outbox / "typed.xml").write_bytes(SAMPLE)
    write_meta(outbox, "typed.xml", {**META, "reference": "KE-OK", key: value})
    assert poll(gateway) == 0
    assert queued_references(gateway) == []                       # nothing recorded, nothing sent
    error = (outbox / "rejected" / "typed.xml.error.txt").read_text()
    assert words in error and json.dumps(value) in error, error
    assert not errors


def test_a_string_or_null_reference_is_accepted(gateway):
    outbox = gateway.config.folder.outbox
    (outbox / "a.xml").write_bytes(SAMPLE)
    write_meta(outbox, "a.xml", {**META, "reference": "KE-STR"})
    (outbox / "b.xml").write_bytes(SAMPLE)
    write_meta(outbox, "b.xml", {**META, "reference": None})
    assert poll(gateway) == 2
    assert queued_references(gateway) == [None, "KE-STR"]


@pytest.mark.parametrize("folder", ["sent", "rejected", ".processing"])
def test_metadata_naming_one_of_the_gateways_own_folders_is_rejected_and_the_folder_stays(gateway, errors, folder):
    outbox = gateway.config.folder.outbox
    drop_document(outbox, "before.xml", SAMPLE, partner="bb-nsw", document_type="ephyto", reference="BEFORE")
    assert poll(gateway) == 1                                     # sent/ now holds an archived document
    write_meta(outbox, folder)
    assert poll(gateway) == 0
    error = (outbox / "rejected" / f"{folder}.error.txt").read_text()
    assert "one of the gateway's own folders" in error and "another name" in error
    assert (outbox / folder).is_dir() and (outbox / "sent" / "before.xml").is_file()
    assert gateway.connector.claimed() == [] and not errors
