"""docs/CONFORMANCE.md stays true: every test it names exists, every attack-corpus case it
names exists, and every requirement row has a status and (unless out of scope) a proof.

A renamed or deleted test would otherwise leave the conformance table pointing at nothing
while still looking complete."""
from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

from tests.corpus.cases import CASES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "CONFORMANCE.md"
TEST_ID = re.compile(r"\b(tests/[\w/]+\.py)::(\w+)")
CORPUS_ID = re.compile(r"\bcorpus:([a-z][a-z0-9_]*)")
ROW_ID = re.compile(r"^[A-Z]{2}-\d+$")
STATUSES = {"met", "partial", "out of scope"}


@cache
def _functions(path: str) -> frozenset[str]:
    """Test functions defined at module level or in classes of one test file."""
    tree = ast.parse((ROOT / path).read_text("utf-8"))
    return frozenset(node.name for node in ast.walk(tree)
                     if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)))


def _requirement_rows() -> list[list[str]]:
    rows = []
    for line in DOC.read_text("utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if cells and ROW_ID.match(cells[0]):
            rows.append(cells)
    return rows


def test_every_named_test_exists():
    text = DOC.read_text("utf-8")
    named = TEST_ID.findall(text)
    assert len(named) > 50, "the conformance table should name the tests that prove it"
    missing = [f"{path}::{name}" for path, name in named
               if not (ROOT / path).is_file() or name not in _functions(path)]
    assert not missing, "docs/CONFORMANCE.md names tests that do not exist:\n  " + "\n  ".join(missing)


def test_every_named_corpus_case_exists():
    names = {case.name for case in CASES}
    named = set(CORPUS_ID.findall(DOC.read_text("utf-8")))
    assert named, "the table should point at attack-corpus cases"
    assert not named - names, f"docs/CONFORMANCE.md names unknown corpus cases: {sorted(named - names)}"


def test_every_row_has_a_status_and_a_proof():
    rows = _requirement_rows()
    assert len(rows) >= 40
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    problems = []
    for row in rows:
        if len(row) != 5:
            problems.append(f"{row[0]}: expected 5 columns, got {len(row)}")
            continue
        row_id, _requirement, msh, status, proof = row
        if status not in STATUSES:
            problems.append(f"{row_id}: status {status!r} is not one of {sorted(STATUSES)}")
        if not set(msh.replace(" ", "").split(",")) <= {"S", "R"}:
            problems.append(f"{row_id}: MSH column {msh!r} should be S, R or S, R")
        if status != "out of scope" and not TEST_ID.search(proof):
            problems.append(f"{row_id}: no test named in {proof!r}")
        if status == "partial" and len(TEST_ID.sub("", proof).strip(" ,.`")) < 30:
            problems.append(f"{row_id}: a partial row must say what is missing")
    assert not problems, "\n".join(problems)


def test_out_of_scope_section_gives_reasons():
    text = DOC.read_text("utf-8")
    assert "## Deliberately out of scope" in text
    section = text.split("## Deliberately out of scope", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines()
            if line.startswith("| ") and not line.startswith(("| Feature", "| ---"))]
    for topic in ("Pull", "bundling", "SML/SMP", "WS-ReliableMessaging", "Multi-hop", "split and join"):
        assert any(topic in row for row in rows), f"out-of-scope section lacks {topic!r}"
    assert all(len(row.split("|")[2].strip()) > 40 for row in rows), "each out-of-scope item needs its reason"
