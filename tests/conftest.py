"""Fixtures with real components: redis-server processes (password, ACL users, TLS with
trustme certificates) started per test session in temporary directories."""
from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import free_port

REDIS_PASSWORD = "s3cret-redis-pw-7731"
READER_PASSWORD = "reader-pw-5521"


@dataclass
class RedisServer:
    port: int
    proc: subprocess.Popen
    tls: bool = False

    def url(self, user: str = "", password: str = REDIS_PASSWORD, db: int = 0) -> str:
        auth = f"{user}:{password}@" if password or user else ""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://{auth}127.0.0.1:{self.port}/{db}"

    def cli(self, *args: str, password: str = REDIS_PASSWORD, extra: tuple[str, ...] = ()) -> str:
        cmd = ["redis-cli", "-p", str(self.port), "--no-auth-warning", *extra]
        if password:
            cmd += ["-a", password]
        return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=10).stdout


def _start_redis(tmp: Path, *extra: str, tls: bool = False) -> RedisServer:
    if not shutil.which("redis-server"):
        pytest.fail("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    ports = ["--port", "0", "--tls-port", str(port)] if tls else ["--port", str(port)]
    proc = subprocess.Popen(["redis-server", *ports, "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = RedisServer(port, proc, tls)
    deadline = time.monotonic() + 10
    import socket
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"redis-server exited with {proc.returncode}")
            time.sleep(0.05)
    proc.kill()
    pytest.fail("redis-server did not start")


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """Password-protected Redis with ACL user `reader`: no writes, no streams, no CONFIG."""
    tmp = tmp_path_factory.mktemp("redis")
    server = _start_redis(
        tmp, "--requirepass", REDIS_PASSWORD,
        "--user", "reader", "on", f">{READER_PASSWORD}", "~*", "+@read", "+@connection",
        "+info", "-@write", "-@stream")
    yield server
    server.proc.terminate()
    server.proc.wait(10)


@pytest.fixture(scope="session")
def tls_certs(tmp_path_factory):
    import trustme

    tmp = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"ca": tmp / "ca.pem", "cert": tmp / "server.pem", "key": tmp / "server.key"}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    other = trustme.CA()  # a CA that did not sign the server's certificate
    paths["other_ca"] = tmp / "other-ca.pem"
    other.cert_pem.write_to_path(str(paths["other_ca"]))
    return paths


@pytest.fixture(scope="session")
def redis_tls(tmp_path_factory, tls_certs):
    tmp = tmp_path_factory.mktemp("redis-tls")
    server = _start_redis(tmp, "--requirepass", REDIS_PASSWORD,
                          "--tls-cert-file", str(tls_certs["cert"]),
                          "--tls-key-file", str(tls_certs["key"]),
                          "--tls-ca-cert-file", str(tls_certs["ca"]),
                          "--tls-auth-clients", "no", tls=True)
    yield server
    server.proc.terminate()
    server.proc.wait(10)


@pytest.fixture
def redis_factory(tmp_path):
    """Start a dedicated redis-server with extra config (for tests that change it)."""
    started: list[RedisServer] = []

    def start(*extra: str, tls: bool = False) -> RedisServer:
        server = _start_redis(tmp_path, *extra, tls=tls)
        started.append(server)
        return server

    yield start
    for s in started:
        s.proc.kill()
        s.proc.wait(10)
