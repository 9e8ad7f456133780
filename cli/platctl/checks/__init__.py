"""Service checks: one module per service, listed explicitly (no import-time registration).

Modules are imported only when a run needs them, so `platctl --help` never pays for a client.
"""

MODULES: dict[str, str] = {
    "redis": "platctl.checks.redis",
    "arango": "platctl.checks.arango",
    "supabase": "platctl.checks.supabase",
    "gcs": "platctl.checks.gcs",
    "meilisearch": "platctl.checks.meilisearch",
    "duckdb": "platctl.checks.duckdb",
    "consul": "platctl.checks.consul",
    "telemetry": "platctl.checks.telemetry",
    "runtime": "platctl.checks.runtime",
}
