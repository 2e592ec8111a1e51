"""A database the gateway cannot use is one line naming the URL (never its password) and the
fix, from `swgw serve`, every other command and `swgw checkconfig`, which connects to check."""
from __future__ import annotations

import sys

import pytest

from gateway.cli import main
from tests.harness import reserve_port, swgw, write_node


def node_with(tmp_path, pki, url: str):
    return write_node(tmp_path, pki, "aa-nsw", "bb-nsw", reserve_port(), reserve_port(), database_url=url)


def one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def bad_urls(cluster) -> dict[str, tuple[str, str]]:
    """kind -> (URL, what the line must say)."""
    down = reserve_port()               # bound, never listening: connections are refused
    return {
        "wrong password": (cluster.url(password="not-the-password"), "check the user name and password"),
        "no such database": (cluster.url("nosuchdb"), "create the database"),
        "server down": (f"postgresql+psycopg://gw:s3cret-pw@127.0.0.1:{down}/gw",
                        "check that the database server is running"),
        "unsupported driver": ("postgresql+pg8000://gw:s3cret-pw@127.0.0.1/gw", "the supported driver is psycopg"),
    }


@pytest.mark.parametrize("kind", ["wrong password", "no such database", "server down", "unsupported driver"])
def test_every_command_says_what_is_wrong_with_the_database_in_one_line(tmp_path, pki, pg_cluster, kind):
    url, fix = bad_urls(pg_cluster)[kind]
    node = node_with(tmp_path, pki, url)
    for args in (["checkconfig"], ["messages"], ["evidence", "verify"], ["aeo", "lookup", "XX123"]):
        done = swgw(*args, "-c", str(node.config_path), check=False)
        line = one_line(done.stderr)
        assert done.returncode == 1, (args, done.stderr)
        assert line.startswith("swgw: ") and fix in line, (args, line)
        assert "***@127.0.0.1" in line or "gw@" not in line, line
        assert pg_cluster.password not in line and "s3cret-pw" not in line and "not-the-password" not in line
        assert "Traceback" not in done.stderr


def test_serve_with_an_unusable_database_exits_with_one_line(tmp_path, pki, pg_cluster):
    node = node_with(tmp_path, pki, pg_cluster.url(password="not-the-password"))
    done = swgw("serve", "-c", str(node.config_path), check=False)     # exits at once, before listening
    assert done.returncode == 1
    line = one_line(done.stderr)
    assert "cannot use the database postgresql+psycopg://postgres:***@127.0.0.1" in line
    assert "check the user name and password in [database] url" in line


def test_a_missing_driver_names_the_package_to_install(tmp_path, pki, capsys, monkeypatch):
    node = node_with(tmp_path, pki, "postgresql+psycopg://gw:s3cret-pw@127.0.0.1/gw")
    monkeypatch.setitem(sys.modules, "psycopg", None)      # as on a machine without the extra
    for args in (["checkconfig"], ["messages"]):
        code = main([*args, "-c", str(node.config_path)])
        err = capsys.readouterr().err
        assert code == 1
        line = one_line(err)
        assert "the driver 'psycopg' is not installed; pip install 'swgw[postgresql]'" in line
        assert "s3cret-pw" not in line and "gw:***@127.0.0.1" in line


def test_checkconfig_connects_to_a_good_database(tmp_path, pki, pg_cluster):
    node = node_with(tmp_path, pki, pg_cluster.new_database())
    done = swgw("checkconfig", "-c", str(node.config_path), check=False)
    assert done.returncode == 0, done.stderr
    assert "reachable" in done.stdout and pg_cluster.password not in done.stdout


def test_checkconfig_does_not_create_a_sqlite_database(tmp_path, pki):
    db = tmp_path / "new" / "gateway.db"
    node = node_with(tmp_path, pki, f"sqlite:///{db}")
    done = swgw("checkconfig", "-c", str(node.config_path), check=False)
    assert done.returncode == 0, done.stderr
    assert "created at the first start" in done.stdout
    assert not db.exists()
