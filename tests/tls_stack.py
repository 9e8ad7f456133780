"""A Phase 1 stack on this machine with TLS on every hop, for `option-c-phase1`.

Every network service is reached over TLS with certificates of one test CA (trustme):
a real redis-server on `--tls-port`, the HTTP emulators served over HTTPS, the real
gcp-storage-emulator behind an HTTPS front that admits only the tokens an HTTPS OAuth token
endpoint issued for a service-account key made here (tests/tokenserver.py), plus a DuckDB file
and a runtime command. `phase1_stack()` yields the platform contract's environment for it,
without any CA setting: the caller chooses SSL_CERT_FILE, tls.ca_file or neither.

Managed-service shapes where they matter: Supabase with sb_secret_/sb_publishable_ keys
(hosted wording), ArangoDB with a non-superuser granted rw on its database, Meilisearch with
its admin key (not the master key), Redis with a password and no username.
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.emulators.arango import ArangoEmulator
from tests.emulators.base import Emulator, wait_port
from tests.emulators.consul import GOOD_TOKEN, ConsulEmulator
from tests.emulators.gcs import GcsEmulator
from tests.emulators.meilisearch import MeilisearchEmulator
from tests.emulators.otlp import OtlpEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.support import clean_env, free_port
from tests.tokenserver import GcsFront, TokenServer, rsa_key, service_account_json

SUBJECT_CN = "phase1.platctl.test"  # the servers' certificate subject, named in TLS failures
REDIS_PASSWORD = "phase1-redis-pw-5190"
BUCKET = "platform"
SA_EMAIL = "platform-runtime@acme-prod.iam.gserviceaccount.com"
NETWORK = ("redis", "arango", "supabase", "gcs", "meilisearch", "consul", "telemetry")


@dataclass
class Certs:
    ca: Path
    cert: Path
    key: Path


def make_certs(directory: Path) -> Certs:
    import trustme

    ca = trustme.CA(organization_name="platctl test CA")
    leaf = ca.issue_cert("127.0.0.1", "localhost", common_name=SUBJECT_CN)
    certs = Certs(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(certs.ca))
    certs.cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(certs.key))
    return certs


@contextmanager
def redis_tls(workdir: Path, certs: Certs) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(workdir),
         "--requirepass", REDIS_PASSWORD, "--tls-cert-file", str(certs.cert),
         "--tls-key-file", str(certs.key), "--tls-ca-cert-file", str(certs.ca),
         "--tls-auth-clients", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield f"rediss://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass
class Stack:
    env: dict[str, str]  # the contract's keys, no CA setting
    certs: Certs
    work: Path
    emulators: dict[str, Emulator]


@contextmanager
def phase1_stack() -> Iterator[Stack]:
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="platctl-phase1-")))
        certs = make_certs(work)
        tls = (str(certs.cert), str(certs.key))

        def https(emu: Emulator) -> Emulator:
            return stack.enter_context(emu.use_tls(*tls))

        redis_url = stack.enter_context(redis_tls(work, certs))
        arango = https(ArangoEmulator())  # app: a non-superuser with rw on platform
        supabase = https(SupabaseEmulator(hosted=True))
        meili = https(MeilisearchEmulator())
        consul = https(ConsulEmulator())
        otlp = https(OtlpEmulator())
        gcs = stack.enter_context(GcsEmulator(bucket=BUCKET))
        tokens = stack.enter_context(TokenServer(tls))
        front = stack.enter_context(GcsFront(("127.0.0.1", gcs.port), tokens, tls))
        private, public = rsa_key()
        tokens.accounts[SA_EMAIL] = public
        runtime = work / "platform-runtime"
        runtime.write_text(f"#!{sys.executable}\nprint('runtime')\n")
        runtime.chmod(0o755)
        env = clean_env(
            REDIS_URL=redis_url,
            ARANGO_URL=arango.url, ARANGO_USERNAME="app", ARANGO_PASSWORD="apppw",
            ARANGO_DATABASE="platform",
            SUPABASE_URL=supabase.url, SUPABASE_SERVICE_KEY=supabase.secret_key,
            SUPABASE_ANON_KEY=supabase.publishable_key,
            GCS_PROJECT_ID="acme-prod", GCS_BUCKET_NAME=BUCKET, GCS_ENDPOINT=front.url,
            GCS_CREDENTIALS_JSON=service_account_json(SA_EMAIL, private, tokens.token_uri),
            MEILISEARCH_URL=meili.url, MEILI_MASTER_KEY=meili.admin_key,
            DUCKDB_DATABASE_PATH=str(work / "duckdb" / "platform.duckdb"),
            CONSUL_SCHEME="https", CONSUL_HOST="127.0.0.1", CONSUL_PORT=str(consul.port),
            CONSUL_TOKEN=GOOD_TOKEN,
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
            PLATFORM_RUNTIME_CMD=str(runtime))
        env.pop("SSL_CERT_FILE", None)
        yield Stack(env, certs, work, {"arango": arango, "supabase": supabase,
                                       "meilisearch": meili, "consul": consul, "telemetry": otlp,
                                       "tokens": tokens, "gcs_front": front})
