"""`evidence verify`'s checkpoint part: does the chain still reach as far as the checkpoints say?

Checked, so that deleting the newest entries (with or without their rows) is noticed:

* the newest checkpoint is signed by one of our signing certificates (older ones are
  checked too when their certificate is still ours; all are pinned by the ``previous`` links);
* the history is unbroken: numbers without gaps, each ``previous`` the SHA-256 of the file
  before it, ``seq`` never going back;
* the chain holds every checkpointed entry with the same hash, and reaches at least the
  newest checkpoint's ``seq``: otherwise the missing range and the checkpoint file are named;
* a chain with entries older than twice the checkpoint interval but no checkpoint at all.

What remains possible (README "Evidence", docs/ARCHITECTURE.md): deleting entries written
after the newest checkpoint, and, for whoever can write the whole state directory, deleting
the newest checkpoints together with the entries after an older one.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography import x509

from gateway.evidence.canonical import format_time
from gateway.evidence.checkpoint import Checkpoint, certificate_sha256, load_checkpoints


@dataclass(frozen=True)
class CheckpointPolicy:
    """What `evidence verify` needs to check checkpoints: where they are, our certificates,
    and how often the daemon writes them."""
    directory: Path
    certificates: tuple[x509.Certificate, ...]
    interval: float


@dataclass(frozen=True)
class Finding:
    seq: int | None
    where: str
    detail: str


@dataclass
class CheckpointResult:
    findings: list[Finding]
    summary: str | None      # the newest checkpoint, for the OK line


def check_checkpoints(policy: CheckpointPolicy, chain: Sequence[tuple[int, str, dt.datetime]],
                      now: dt.datetime | None = None) -> CheckpointResult:
    """``chain``: (seq, entry_hash, time) of every entry, by seq."""
    now = now or dt.datetime.now(dt.timezone.utc)
    findings: list[Finding] = []
    loaded = load_checkpoints(policy.directory)
    head_seq = chain[-1][0] if chain else 0
    if not loaded:
        if chain and chain[0][2] < now - dt.timedelta(seconds=2 * policy.interval):
            findings.append(Finding(None, f"checkpoint directory {policy.directory}",
                                    f"holds no checkpoint, but the chain has {len(chain)} entries since "
                                    f"{format_time(chain[0][2])} and the daemon writes one every "
                                    f"{policy.interval:g} s: the checkpoint files were deleted (so deleting the "
                                    "newest entries cannot be ruled out), or no daemon of this version has "
                                    "run yet; once you know the chain is complete, `swgw evidence checkpoint` "
                                    "starts a new checkpoint history"))
        return CheckpointResult(findings, None)

    good: list[Checkpoint] = []
    for item in loaded:
        if isinstance(item, Checkpoint):
            good.append(item)
        else:
            path, why = item
            findings.append(Finding(None, f"checkpoint file {path}", f"{why}: the file was altered or damaged"))
    ours = {certificate_sha256(c) for c in policy.certificates}
    for before, cp in zip(good, good[1:]):
        if cp.number != before.number + 1:
            missing = f"{before.number + 1}" if cp.number == before.number + 2 else \
                f"{before.number + 1} to {cp.number - 1}"
            findings.append(Finding(None, f"checkpoint directory {policy.directory}",
                                    f"checkpoint(s) {missing} missing between {before.path.name} and "
                                    f"{cp.path.name}: files deleted"))
        elif cp.previous != before.digest:
            findings.append(Finding(None, f"checkpoint file {cp.path}",
                                    f"field previous is {str(cp.previous)[:16]}…, not the SHA-256 of "
                                    f"{before.path.name} ({before.digest[:16]}…): one of the two files was "
                                    "altered or replaced"))
        if cp.seq < before.seq:
            findings.append(Finding(None, f"checkpoint file {cp.path}",
                                    f"records seq {cp.seq}, behind {before.path.name}'s seq {before.seq}: "
                                    "a checkpoint never goes back, so one of them is not genuine"))
    if not good:
        return CheckpointResult(findings, None)
    latest = good[-1]
    for cp in good:
        if cp is latest or cp.signer_cert_sha256 in ours:
            problem = cp.signature_problem(policy.certificates)
            if problem:
                findings.append(Finding(None, f"checkpoint file {cp.path}", problem))

    by_seq = {seq: h for seq, h, _t in chain}
    rewritten = next((cp for cp in good if cp.seq in by_seq and by_seq[cp.seq] != cp.entry_hash), None)
    if rewritten is not None:
        findings.append(Finding(rewritten.seq, f"evidence_log seq {rewritten.seq}, field entry_hash",
                                f"is {by_seq[rewritten.seq][:16]}…, not the {rewritten.entry_hash[:16]}… that "
                                f"checkpoint {rewritten.path} (written {rewritten.time}) recorded: the chain was "
                                f"rewritten at or before seq {rewritten.seq}"))
    beyond = max(good, key=lambda cp: cp.seq)
    if beyond.seq > head_seq:
        first = head_seq + 1
        span = f"seq {first}" if first == beyond.seq else f"seq {first}-{beyond.seq}"
        ends = f"now ends at seq {head_seq}" if head_seq else "is now empty"
        findings.append(Finding(first, f"evidence_log {span}",
                                f"missing: checkpoint {beyond.path} (written {beyond.time}) records the chain "
                                f"head at seq {beyond.seq} with hash {beyond.entry_hash[:16]}…, but the chain "
                                f"{ends}: the newest evidence entries were deleted (tail truncation), with any "
                                "rows only they witnessed"))
    after = max(head_seq - latest.seq, 0)
    summary = (f"checkpoint {latest.number} at seq {latest.seq} written {latest.time} ({latest.path}), "
               f"{after} entr{'y' if after == 1 else 'ies'} after it")
    return CheckpointResult(findings, summary)
