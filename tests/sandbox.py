"""A local sandbox for `make demo`: every backing service of the `vm` profile on this machine.

Real where a real server runs here (redis-server, a DuckDB file, the gcp-storage-emulator
process), protocol-faithful test emulators elsewhere (ArangoDB, Consul, Meilisearch, Supabase,
an OTLP receiver). It exports the platform contract's environment keys, so the built-in `vm`
profile validates against it unchanged.

    python -m tests.sandbox demo   # validate -p vm, then boot a sample runtime
    python -m tests.sandbox up     # keep it running and print the env to export
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.emulators.arango import ArangoEmulator
from tests.emulators.base import wait_port
from tests.emulators.consul import GOOD_TOKEN, ConsulEmulator
from tests.emulators.meilisearch import MeilisearchEmulator
from tests.emulators.otlp import OtlpEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.support import PLATCTL, VENV_BIN, clean_env, free_port

REDIS_PASSWORD = "sandbox-redis-pw"
ARANGO_PASSWORD = "sandbox-arango-pw"
MEILI_KEY = "sandbox-meili-master-key"
BUCKET = "platform"

SAMPLE_RUNTIME = """#!{python}
# The sample runtime `make demo` boots: proves it was exec'd by platctl (same PID).
import os, sys
print(f"sample runtime: running as pid {{os.getpid()}} with args {{sys.argv[1:]}}")
print("sample runtime: every backing service was validated before I started; exiting 0")
"""


@contextmanager
def redis_server(workdir: Path):
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(workdir),
                             "--requirepass", REDIS_PASSWORD],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield f"redis://:{REDIS_PASSWORD}@127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def gcs_emulator():
    port = free_port()
    proc = subprocess.Popen([str(VENV_BIN / "gcp-storage-emulator"), "start", "--host=127.0.0.1",
                             f"--port={port}", "--in-memory", f"--default-bucket={BUCKET}", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def sandbox():
    """Start everything; yield (environment, description lines)."""
    if not shutil.which("redis-server"):
        sys.exit("the sandbox needs redis-server (apt-get install redis-server)")
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="platctl-sandbox-")))
        redis_url = stack.enter_context(redis_server(work))
        gcs_url = stack.enter_context(gcs_emulator())
        arango = stack.enter_context(ArangoEmulator(users={"root": ARANGO_PASSWORD}))
        consul = stack.enter_context(ConsulEmulator())
        meili = stack.enter_context(MeilisearchEmulator(master_key=MEILI_KEY))
        supabase = stack.enter_context(SupabaseEmulator())
        otlp = stack.enter_context(OtlpEmulator())
        runtime = work / "sample-runtime"
        runtime.write_text(SAMPLE_RUNTIME.format(python=sys.executable))
        runtime.chmod(0o755)
        env = clean_env(
            REDIS_URL=redis_url,
            ARANGO_URL=arango.url, ARANGO_USERNAME="root", ARANGO_PASSWORD=ARANGO_PASSWORD,
            ARANGO_DATABASE="platform",
            SUPABASE_URL=supabase.url, SUPABASE_SERVICE_KEY=supabase.service_role_key,
            SUPABASE_ANON_KEY=supabase.anon_key,
            GCS_PROJECT_ID="sandbox", GCS_BUCKET_NAME=BUCKET, STORAGE_EMULATOR_HOST=gcs_url,
            MEILISEARCH_URL=meili.url, MEILI_MASTER_KEY=MEILI_KEY,
            DUCKDB_DATABASE_PATH=str(work / "duckdb" / "platform.duckdb"),
            CONSUL_HOST="127.0.0.1", CONSUL_PORT=str(consul.port), CONSUL_TOKEN=GOOD_TOKEN,
            OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
            PLATFORM_RUNTIME_CMD=f"{runtime} --demo")
        lines = [
            f"redis        real redis-server (password)     {redis_url.replace(REDIS_PASSWORD, '***')}",
            f"duckdb       real DuckDB file                 {env['DUCKDB_DATABASE_PATH']}",
            f"gcs          real gcp-storage-emulator        {gcs_url}",
            f"arango       test emulator (ArangoDB 3.12)    {arango.url}",
            f"supabase     test emulator (Kong+PostgREST)   {supabase.url}",
            f"meilisearch  test emulator (Meilisearch 1.x)  {meili.url}",
            f"consul       test emulator (Consul 1.20)      {consul.url}",
            f"telemetry    test emulator (OTLP/HTTP)        {otlp.url}",
            f"runtime      sample runtime script            {runtime}",
        ]
        yield env, lines


def banner(lines: list[str]) -> None:
    print("=" * 78)
    print("LOCAL SANDBOX: not a real deployment. Emulators stand in for the services")
    print("that cannot run on this machine; credentials are throwaway.")
    print("-" * 78)
    for line in lines:
        print("  " + line)
    print("=" * 78, flush=True)


def demo() -> int:
    with sandbox() as (env, lines):
        banner(lines)
        print("\n$ platctl validate -p vm\n", flush=True)
        validate = subprocess.run([PLATCTL, "validate", "-p", "vm"], env=env)
        print(f"\n(exit code {validate.returncode})\n\n$ platctl boot -p vm\n", flush=True)
        boot = subprocess.run([PLATCTL, "boot", "-p", "vm"], env=env)
        print(f"\n(exit code {boot.returncode})")
        return validate.returncode or boot.returncode


def up() -> int:
    with sandbox() as (env, lines):
        banner(lines)
        print("\nexport these to use it (Ctrl-C stops the sandbox):\n")
        for key in sorted(k for k in env if k not in os.environ or os.environ[k] != env[k]):
            print(f"export {key}='{env[key]}'")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit({"demo": demo, "up": up}[sys.argv[1] if len(sys.argv) > 1 else "demo"]())
