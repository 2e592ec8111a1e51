"""Shared set-up for the evidence tests: two in-process gateways exchanging real AS4 messages."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gateway.daemon import Gateway
from gateway.outbound import Submission
from gateway.receipts import DELIVERED, judge_response
from tests.harness import Node, swgw, write_pair


@dataclass
class Pair:
    a: Node
    b: Node
    gw_a: Gateway
    gw_b: Gateway

    def close(self) -> None:
        self.gw_a.store.close()
        self.gw_b.store.close()

    def exchange(self, document: bytes = b"<doc>evidence</doc>", document_type: str = "test-cert",
                 reference: str = "REF-1") -> str:
        """a submits, b's inbound pipeline answers, a verifies and records the receipt."""
        mid = self.gw_a.outbound.submit(Submission(partner_id="bb-nsw", document_type=document_type,
                                                   document=document, nsw_reference=reference))
        (job,) = [j for j in self.gw_a.store.claim_due(50) if j.message_id == mid]
        answer = self.gw_b.inbound.process(job.content_type, job.body)
        verdict = judge_response(job, self.gw_a.registry().get("bb-nsw"), answer.code, answer.content_type,
                                 answer.body)
        assert verdict.outcome == DELIVERED, verdict
        self.gw_a.store.mark_delivered(job.pk, answer.body, answer.content_type, [],
                                       receipt_message_id=verdict.receipt_message_id)
        return mid


def make_pair(tmp: Path, pki: Path, database_urls: tuple[str, str] | None = None) -> Pair:
    a, b = write_pair(tmp, pki, database_urls=database_urls)
    return Pair(a, b, Gateway(a.config()), Gateway(b.config()))


def tamper(node: Node, sql: str, **params) -> int:
    """Run one statement on the node's database (SQLite or PostgreSQL) behind the gateway's
    back, as an attacker with database access would; the number of rows it changed."""
    return _on_database(node, lambda conn, text: conn.execute(text(sql), params).rowcount)


def query_one(node: Node, sql: str, **params):
    """The first row of a query on the node's database, or None."""
    return _on_database(node, lambda conn, text: conn.execute(text(sql), params).first())


def _on_database(node: Node, work):
    from sqlalchemy import text

    from gateway.store.connect import make_engine
    engine = make_engine(node.config().database_url)
    try:
        with engine.begin() as conn:
            return work(conn, text)
    finally:
        engine.dispose()


def db_path(node: Node) -> str:
    """The node's SQLite database file, for tests that tamper with it directly."""
    return str(node.config().state_dir / "gateway.db")


@dataclass
class Done:
    returncode: int
    stdout: str
    stderr: str


def evidence_cli(*args: str, node: Node, capsys=None) -> Done:
    """`swgw evidence ...`: a child process, or in this process through gateway.cli.main when
    ``capsys`` is given (the same code, without paying for an interpreter start)."""
    if capsys is None:
        done = swgw("evidence", *args, "-c", str(node.config_path), check=False)
        return Done(done.returncode, done.stdout, done.stderr)
    from gateway.cli import main
    capsys.readouterr()
    code = main(["evidence", *args, "-c", str(node.config_path)])
    out = capsys.readouterr()
    return Done(code, out.out, out.err)
