"""Property-based conformance of the NSW HTTP API against its own /openapi.json (schemathesis).

A real ``swgw serve`` daemon (tests/harness.py) with the API on 127.0.0.1; schemathesis reads
the OpenAPI document from it and sends generated requests, valid and invalid, to every
operation (its examples, coverage and fuzzing phases, every check): no answer may be a 5xx,
every answer must be documented (status, content type, schema, headers), wrong methods must
get 405 with Allow, requests without the token 401, and invalid data must be refused.

Bounded and deterministic: schemathesis' deterministic generation (no randomness, so the same
requests every run), a few examples per operation, one worker. It runs as the ``schemathesis``
command, the tool's stable interface (its pytest integration's lazy-fixture loader does not
work with the pytest this project uses).

Submissions reach the real outbound pipeline: ``partner`` and ``type`` are drawn mostly from
what the daemon is configured with, so documents are judged by it, and a valid request may be
queued (202; the partner's gateway is not running, so the sender just retries) or refused
(400 for an unknown partner or type, 422 for a document that is not acceptable), which is why
those count as accepting valid data for that one operation.
"""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import urllib.request

import pytest

from tests.harness import Daemon, reserve_port, wait_for, write_pair

TOKEN = "schemathesis-token-0123456789abcdef"
OPERATIONS = {("POST", "/api/v1/documents"), ("GET", "/api/v1/messages"), ("GET", "/api/v1/messages/{message_id}"),
              ("GET", "/api/v1/inbox"), ("GET", "/api/v1/inbox/{id}"), ("POST", "/api/v1/inbox/{id}/ack"),
              ("GET", "/health")}          # schemathesis leaves out the document it was loaded from
CONFIG = """
[generation]
max-examples = 8
deterministic = true
database = "none"

[dictionaries.partners]
values = ["bb-nsw"]

[dictionaries.types]
values = ["ephyto", "manifest", "test-cert", "test-manifest"]

[[operations]]
include-operation-id = "submitDocument"
checks.positive_data_acceptance.expected-statuses = ["202", "400", "422"]
parameters."query.partner" = { dictionary = "partners", probability = 0.8 }
parameters."query.type" = { dictionary = "types", probability = 0.8 }
"""


def _up(base: str) -> bool:
    try:
        with urllib.request.urlopen(base + "/health", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def api_base(tmp_path, pki):
    node, _ = write_pair(tmp_path, pki)          # the partner, bb-nsw, is never started
    port = reserve_port()
    tokens = node.home / "api-tokens"
    tokens.write_text(TOKEN + "\n")
    os.chmod(tokens, 0o600)
    with open(node.config_path, "a") as fh:
        fh.write(f'\n[nsw.api]\nhost = "127.0.0.1"\nport = {port}\ntoken_file = "{tokens}"\n')
    daemon = Daemon(node).start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _up(base), timeout=60, what="the NSW API listener")
        yield base
    finally:
        daemon.stop()


def test_api_conforms_to_its_openapi_document(api_base, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    reports = tmp_path / "schemathesis-report"
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file", str(config), "run",
         api_base + "/openapi.json", "--header", f"Authorization: Bearer {TOKEN}", "--checks", "all",
         "--phases", "examples,coverage,fuzzing", "--workers", "1", "--request-timeout", "30",
         "--report", "har", "--report-dir", str(reports)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")})
    output = run.stdout[-12000:] + run.stderr[-3000:]
    assert run.returncode == 0, output
    assert f"{len(OPERATIONS)} selected / {len(OPERATIONS)} total" in run.stdout, output

    # The run really reached every operation, and the pipeline behind the submit operation.
    [har] = reports.glob("*.json")
    entries = json.loads(har.read_text())["log"]["entries"]
    statuses = collections.Counter()
    for entry in entries:
        path = entry["request"]["url"].split("?", 1)[0][len(api_base):]
        statuses[(entry["request"]["method"], path, entry["response"]["status"])] += 1
        assert entry["response"]["status"] < 500, entry
    reached = {(m, p) for (m, p, _) in statuses}
    for method, path in OPERATIONS:
        prefix = path.split("{", 1)[0]
        assert any(m == method and p.startswith(prefix) for m, p in reached), (method, path)
    submit = {s for (m, p, s) in statuses if (m, p) == ("POST", "/api/v1/documents")}
    assert {400, 401, 415, 422} <= submit, submit
    assert any(s == 405 for (_, _, s) in statuses)
