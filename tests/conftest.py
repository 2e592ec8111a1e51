import functools
import os
import sys
from pathlib import Path

import pytest

from tests.crypto_helpers import Identity, make_identity
from tests.harness import make_pki, release_ports


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Run pytest-twisted's reactor without Twisted's signal handlers.

    With them, a SIGTERM or SIGINT reaching the test process stops the reactor quietly: the
    test running at that moment fails with pytest-twisted's "illegal switch in blockon" and
    every later test with "twisted reactor has stopped". In-process gateways need no signal
    handling (the daemons under test are child processes with their own), and without the
    handlers a signal meant for the run ends it the ordinary way."""
    import greenlet
    import pytest_twisted
    instances = pytest_twisted._instances
    if instances.gr_twisted is not None and not instances.gr_twisted and not instances.gr_twisted.dead:
        instances.gr_twisted = greenlet.greenlet(functools.partial(instances.reactor.run,
                                                                   installSignalHandlers=False))


@pytest.fixture(autouse=True)
def _reactor_outlives_the_test(request):
    """A test that stops the shared reactor (it cannot be restarted) would fail every test after
    it on this worker. Under pytest-xdist the worker then ends at once: xdist reports this test
    as the one that crashed it and carries on with a fresh worker (and a fresh reactor)."""
    yield
    import pytest_twisted
    gr = pytest_twisted._instances.gr_twisted
    if gr is not None and gr.dead:
        message = (f"\n{request.node.nodeid} stopped the Twisted reactor shared by the tests of this "
                   "process; no later test could run in it\n")
        if os.environ.get("PYTEST_XDIST_WORKER"):
            sys.stderr.write(message + "ending this pytest-xdist worker so that a fresh one runs the rest\n")
            sys.stderr.flush()
            os._exit(70)
        pytest.exit(message, returncode=70)


@pytest.fixture(autouse=True)
def _release_held_ports():
    """Ports a test reserved (tests/harness.py) are held until it ends, then released."""
    yield
    release_ports()


@pytest.fixture
def gateway(tmp_path, pki):
    """An in-process gateway (aa-nsw, partner bb-nsw) with its store, pipelines and NSW folders."""
    from gateway.daemon import Gateway
    from tests.harness import write_pair
    a, _ = write_pair(tmp_path, pki)
    gw = Gateway(a.config())
    yield gw
    gw.store.close()


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Path:
    """A dev PKI generated once per test session (never committed key material)."""
    return make_pki(tmp_path_factory.mktemp("pki"))


# Throwaway keys and self-signed certificates for the crypto tests (tests/crypto_helpers.py).
@pytest.fixture(scope="session")
def signer() -> Identity:
    return make_identity("sender-gateway")


@pytest.fixture(scope="session")
def stranger() -> Identity:
    return make_identity("someone-else")


@pytest.fixture(scope="session")
def recipient() -> Identity:
    return make_identity("receiver-gateway")


@pytest.fixture(scope="session")
def ed_signer() -> Identity:
    return make_identity("sender-gateway-ed25519", "ed25519")


@pytest.fixture(scope="session")
def ec_signer() -> Identity:
    return make_identity("sender-gateway-p256", "ec-p256")


@pytest.fixture(scope="session")
def x_recipient() -> Identity:
    return make_identity("receiver-gateway-x25519", "x25519")


@pytest.fixture(scope="session")
def ec_recipient() -> Identity:
    return make_identity("receiver-gateway-p256", "ec-p256")


# -- databases -----------------------------------------------------------------------------
# The store, reliability, evidence and end-to-end tests run on SQLite and on PostgreSQL: one
# throwaway cluster per test process (xdist worker), a fresh database per test.

@pytest.fixture(scope="session")
def pg_cluster():
    from tests.pg_cluster import PgCluster, find_binaries
    binaries = find_binaries()
    if binaries is None:
        message = ("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found on PATH or in "
                   "/usr/lib/postgresql/*/bin: install Debian's postgresql package")
        if os.environ.get("CI"):
            pytest.fail(message)        # on CI these tests must run
        pytest.skip(message)
    cluster = PgCluster(binaries).start()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """A fresh, empty database of each kind the gateway supports."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state' / 'gateway.db'}"
    return request.getfixturevalue("pg_cluster").new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def pair_databases(request):
    """Databases for a pair of nodes (tests.harness.write_pair's ``database_urls``): None is
    each node's default SQLite file; on PostgreSQL, a fresh database each."""
    if request.param == "sqlite":
        return None
    cluster = request.getfixturevalue("pg_cluster")
    return cluster.new_database(), cluster.new_database()
