from pathlib import Path

import pytest

from tests.harness import make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Path:
    """A dev PKI generated once per test session (never committed key material)."""
    return make_pki(tmp_path_factory.mktemp("pki"))
