"""Certificates for the TLS tests (trustme), and real redis-servers serving them.

trustme issues leaf certificates with any validity window (`not_before`/`not_after`) and any
names, so expiring, expired, not-yet-valid and wrong-host certificates are real certificates
that a real server presents; only the CA is ours.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.conftest import REDIS_PASSWORD

NOW = datetime.now(timezone.utc)


@dataclass(frozen=True)
class Served:
    url: str  # rediss://:password@127.0.0.1:PORT/0
    ca: str  # the CA file that signs the server's certificate
    port: int


def issue(ca, directory: Path, *names: str, days: float = 365, starts_in: float = -1) -> dict:
    """A leaf certificate for `names` valid from now + `starts_in` days for `days` days."""
    begin = NOW + timedelta(days=starts_in)
    leaf = ca.issue_cert(*names, not_before=begin, not_after=NOW + timedelta(days=days))
    directory.mkdir(parents=True, exist_ok=True)
    tag = f"{'-'.join(names)}-{days}-{starts_in}".replace("/", "_")
    paths = {"cert": directory / f"{tag}.pem", "key": directory / f"{tag}.key",
             "ca": directory / "ca.pem"}
    leaf.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    leaf.private_key_pem.write_to_path(str(paths["key"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    return paths


def redis_with(redis_factory, ca, directory: Path, *names: str, days: float = 365,
               starts_in: float = -1, password: str = REDIS_PASSWORD) -> Served:
    """A real redis-server (TLS only, requirepass) presenting such a certificate."""
    paths = issue(ca, directory, *(names or ("127.0.0.1",)), days=days, starts_in=starts_in)
    server = redis_factory("--requirepass", REDIS_PASSWORD, "--tls-cert-file", str(paths["cert"]),
                           "--tls-key-file", str(paths["key"]),
                           "--tls-ca-cert-file", str(paths["ca"]), "--tls-auth-clients", "no",
                           tls=True)
    return Served(f"rediss://:{password}@127.0.0.1:{server.port}/0", str(paths["ca"]),
                  server.port)
