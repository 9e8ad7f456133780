"""The `make demo` sandbox's services (tests/sandbox.py), optionally `delay` seconds slow on
every answer, with a count of the round trips each service was asked for.

Latency: the HTTP emulators' own "slow" fault (every request waits `delay` before its answer);
redis-server and the gcp-storage-emulator get a tests/faultproxy.py proxy in front in
"slow_ok" mode (every answer held `delay`). DuckDB and the runtime are local: no latency.

    python -m bench.stack   # one stack in its own process: prints its env as JSON, stops at EOF
"""
from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from tests.emulators.arango import ArangoEmulator
from tests.emulators.consul import GOOD_TOKEN, ConsulEmulator
from tests.emulators.meilisearch import MeilisearchEmulator
from tests.emulators.otlp import OtlpEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.faultproxy import FaultProxy
from tests.sandbox import (ARANGO_PASSWORD, BUCKET, MEILI_KEY, SAMPLE_RUNTIME, gcs_emulator,
                           redis_server)
from tests.support import clean_env


@dataclass
class Stack:
    env: dict[str, str]
    counters: dict[str, Callable[[], int]]  # service -> answers it gave since reset()
    resets: list[Callable[[], None]]

    def round_trips(self) -> dict[str, int]:
        return {name: count() for name, count in self.counters.items()}

    def reset(self) -> None:
        for reset in self.resets:
            reset()


@contextmanager
def stack(delay: float = 0.0) -> Iterator[Stack]:
    with ExitStack() as es:
        work = Path(es.enter_context(tempfile.TemporaryDirectory(prefix="platctl-bench-")))
        redis_url = es.enter_context(redis_server(work))
        gcs_url = es.enter_context(gcs_emulator())
        emus = {"arango": ArangoEmulator(users={"root": ARANGO_PASSWORD}),
                "supabase": SupabaseEmulator(), "meilisearch": MeilisearchEmulator(MEILI_KEY),
                "consul": ConsulEmulator(), "telemetry": OtlpEmulator()}
        counters: dict[str, Callable[[], int]] = {}
        resets: list[Callable[[], None]] = []
        for name, emu in emus.items():
            es.enter_context(emu)
            emu.fault, emu.slow_seconds = ("slow", delay) if delay else ("none", 0.0)
            counters[name] = lambda emu=emu: len(emu.requests)
            resets.append(emu.requests.clear)
        proxied = {}
        for name, url in (("redis", redis_url), ("gcs", gcs_url)):
            if delay:
                parts = urlsplit(url)
                proxy = es.enter_context(FaultProxy(("127.0.0.1", parts.port), "slow_ok",
                                                    slow_ok_delay=delay))
                url = urlunsplit(parts._replace(netloc=parts.netloc.replace(
                    f":{parts.port}", f":{proxy.port}")))
                counters[name] = lambda proxy=proxy: proxy.delayed
                resets.append(lambda proxy=proxy: setattr(proxy, "delayed", 0))
            proxied[name] = url
        runtime = work / "sample-runtime"
        runtime.write_text(SAMPLE_RUNTIME.format(python=sys.executable))
        runtime.chmod(0o755)
        env = clean_env(
            REDIS_URL=proxied["redis"],
            ARANGO_URL=emus["arango"].url, ARANGO_USERNAME="root",
            ARANGO_PASSWORD=ARANGO_PASSWORD, ARANGO_DATABASE="platform",
            SUPABASE_URL=emus["supabase"].url,
            SUPABASE_SERVICE_KEY=emus["supabase"].service_role_key,
            SUPABASE_ANON_KEY=emus["supabase"].anon_key,
            GCS_PROJECT_ID="sandbox", GCS_BUCKET_NAME=BUCKET, STORAGE_EMULATOR_HOST=proxied["gcs"],
            MEILISEARCH_URL=emus["meilisearch"].url, MEILI_MASTER_KEY=MEILI_KEY,
            DUCKDB_DATABASE_PATH=str(work / "duckdb" / "platform.duckdb"),
            CONSUL_HOST="127.0.0.1", CONSUL_PORT=str(emus["consul"].port),
            CONSUL_TOKEN=GOOD_TOKEN, OTEL_EXPORTER_OTLP_ENDPOINT=emus["telemetry"].url,
            PLATFORM_RUNTIME_CMD=f"{runtime} --demo")
        yield Stack(env, counters, resets)


def serve() -> int:
    """One stack in this process until stdin closes (bench/scale.py starts N of these)."""
    with stack() as s:
        print(json.dumps(s.env), flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
