"""Where the daemon listens: its configured port, or a socket handed over by the service
manager (systemd socket activation; every daemon test uses it through tests/harness.py)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

from tests.harness import ROOT, Daemon, write_pair


def _serve(config_path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "serve", "-c", str(config_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_a_port_that_cannot_be_bound_ends_the_daemon_with_the_address_named(tmp_path, pki):
    a, _b = write_pair(tmp_path, pki)          # a's port is held by this test process
    done = _serve(a.config_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"swgw: cannot listen on 127.0.0.1:{a.port}: " in done.stderr
    assert "Address already in use" in done.stderr and "Traceback" not in done.stderr


def test_a_handed_over_socket_bound_elsewhere_is_refused(tmp_path, pki):
    a, _b = write_pair(tmp_path, pki)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        fd = sock.fileno()
        launcher = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.environ['LISTEN_PID'] = str(os.getpid()); "
                    "os.execv(sys.executable, [sys.executable, '-m', 'gateway.cli', 'serve', '-c', sys.argv[2]])")
        env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="as4")
        done = subprocess.run([sys.executable, "-c", launcher, str(fd), str(a.config_path)], cwd=ROOT, env=env,
                              pass_fds=[fd], capture_output=True, text=True, timeout=120)
        bound = sock.getsockname()[1]
    assert done.returncode == 2, done.stdout + done.stderr
    assert (f"inherited socket 'as4' is bound to 127.0.0.1:{bound} but the config says 127.0.0.1:{a.port}"
            in done.stderr)


def test_a_restarted_daemon_keeps_its_port_and_refuses_while_down(tmp_path, pki):
    a, _b = write_pair(tmp_path, pki)
    daemon = Daemon(a).start()
    try:
        with socket.create_connection(("127.0.0.1", a.port), timeout=30):
            pass
        daemon.kill()
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", a.port)) != 0     # down: refused, not queued
        daemon.start()
        with socket.create_connection(("127.0.0.1", a.port), timeout=30):
            pass
    finally:
        daemon.stop()
