"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl from the machine's PostgreSQL
binaries, in a temporary directory, on 127.0.0.1 and a free port, with password (SCRAM)
authentication so that wrong credentials are really refused. Removed afterwards.

PostgreSQL refuses to run as root; when the tests run as root (containers, CI), the cluster's
processes run as ``nobody``. Written by hand rather than with pytest-postgresql, which neither
drops privileges nor lets the tests keep one cluster per xdist worker with a database per test.
"""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SUPERUSER = "postgres"


def find_binaries() -> Path | None:
    """The directory holding initdb, pg_ctl and postgres, or None."""
    on_path = shutil.which("initdb")
    candidates = ([str(Path(on_path).parent)] if on_path else []) + sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    for directory in candidates:
        if all(os.access(Path(directory) / b, os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgCluster:
    def __init__(self, binaries: Path):
        self.binaries = binaries
        self.root = Path(tempfile.mkdtemp(prefix="swgw-pg-"))
        self.password = secrets.token_hex(12)
        self.port = 0
        self._as_nobody = os.geteuid() == 0
        self._count = 0

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        kwargs = {"user": "nobody", "group": "nogroup", "extra_groups": []} if self._as_nobody else {}
        return subprocess.run([str(self.binaries / args[0]), *args[1:]], capture_output=True, text=True,
                              cwd=self.root, timeout=120, **kwargs)

    def start(self) -> "PgCluster":
        if self._as_nobody:
            os.chown(self.root, _uid("nobody"), _gid("nogroup"))
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_nobody:
            os.chown(pwfile, _uid("nobody"), _gid("nogroup"))
        done = self._run("initdb", "-D", str(self.root / "data"), "-U", SUPERUSER, "-A", "scram-sha-256",
                         f"--pwfile={pwfile}", "-E", "UTF8", "--no-instructions")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
        for _attempt in range(5):       # the port is free when picked; another process may take it first
            self.port = _free_port()
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200 "
                       "-c shared_buffers=32MB -c log_min_messages=warning")
            done = self._run("pg_ctl", "-D", str(self.root / "data"), "-l", str(self.root / "server.log"),
                             "-o", options, "-w", "-t", "120", "start")
            if done.returncode == 0:
                return self
        raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout}; "
                           f"{(self.root / 'server.log').read_text()[-2000:]}")

    def url(self, database: str = "postgres", *, password: str | None = None) -> str:
        return (f"postgresql+psycopg://{SUPERUSER}:{self.password if password is None else password}"
                f"@127.0.0.1:{self.port}/{database}")

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import psycopg
        self._count += 1
        name = f"t{os.getpid()}_{self._count}"
        with psycopg.connect(host="127.0.0.1", port=self.port, user=SUPERUSER, password=self.password,
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _uid(name: str) -> int:
    import pwd
    return pwd.getpwnam(name).pw_uid


def _gid(name: str) -> int:
    import grp
    return grp.getgrnam(name).gr_gid
