"""The platform contract as one data structure.

Services, their plane, what the platform uses them for, the environment keys the built-in
profiles read, and the stable ids of the checks platctl runs. The runner takes its plane
order and check ids from here, `platctl contract` renders it, and the README table is
generated from it (tests keep them in step).
"""
from __future__ import annotations

from dataclasses import dataclass

PLANES = ("data", "control", "execution")


@dataclass(frozen=True)
class CheckSpec:
    id: str
    summary: str


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # report name, also the profile section and the checks module
    plane: str
    purpose: str
    env_keys: tuple[str, ...]
    checks: tuple[CheckSpec, ...]

    @property
    def check_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.checks)


def _svc(name: str, plane: str, purpose: str, env: str, *checks: tuple[str, str]) -> ServiceSpec:
    return ServiceSpec(name, plane, purpose, tuple(env.split()),
                       tuple(CheckSpec(f"{name}.{aspect}", summary) for aspect, summary in checks))


# Every network service's certificate check, before its first step that connects; added
# generically (ServiceCheck.all_steps, checks/tls.py). A plaintext endpoint: skip, no connection.
TLS_CHECK = ("tls", "certificate trusted, matches the host, not expiring within 14 days")

SERVICES: tuple[ServiceSpec, ...] = (
    _svc("redis", "data", "hot state, WAL (streams), events",
         "REDIS_URL SSL_CERT_FILE",
         TLS_CHECK,
         ("ping", "connect, authenticate and PING; server version"),
         ("streams", "streams usable (the WAL needs XADD/XRANGE)"),
         ("eviction", "maxmemory-policy is noeviction"),
         ("canary", "write, read back and delete a TTL'd platctl: key")),
    _svc("arango", "data", "durable state and graph",
         "ARANGO_URL ARANGO_USERNAME ARANGO_PASSWORD ARANGO_ROOT_PASSWORD ARANGO_DATABASE",
         TLS_CHECK,
         ("available", "server answers availability and is not read-only"),
         ("auth", "credentials accepted"),
         ("database", "the database exists and is accessible"),
         ("permission", "the user has rw on the database"),
         ("collections", "the profile's collections exist (or are created)")),
    _svc("supabase", "data", "registry, auth, tenancy, file metadata",
         "SUPABASE_URL SUPABASE_SERVICE_KEY SUPABASE_ANON_KEY",
         TLS_CHECK,
         ("keys", "service and anon keys have the right role and are not expired"),
         ("rest", "PostgREST answers with the service key"),
         ("auth", "GoTrue health with the anon key"),
         ("storage", "storage lists buckets with the service key")),
    _svc("gcs", "data", "blob bytes",
         "GCS_PROJECT_ID GCS_BUCKET_NAME GCS_CREDENTIALS_JSON GCS_ENDPOINT STORAGE_EMULATOR_HOST",
         ("credentials", "service-account credentials parse"),
         TLS_CHECK,
         ("bucket", "the bucket exists and is readable"),
         ("permissions", "objects create/get/delete are granted"),
         ("canary", "write, read back and delete a platctl-canary/ object")),
    _svc("meilisearch", "data", "full-text search",
         "MEILISEARCH_URL MEILISEARCH_HOST MEILISEARCH_PORT MEILI_MASTER_KEY",
         TLS_CHECK,
         ("health", "/health answers available"),
         ("auth", "the API key is valid"),
         ("indexes", "the profile's indexes exist")),
    _svc("duckdb", "data", "deterministic compute",
         "DUCKDB_DATABASE_PATH DUCKDB_READ_ONLY",
         ("path", "the file (or its directory) is usable"),
         ("open", "the database opens (no foreign lock) and answers SELECT 1"),
         ("schema", "a schema can be created (rolled back)")),
    _svc("consul", "control", "service discovery",
         "CONSUL_HOST CONSUL_PORT CONSUL_SCHEME CONSUL_TOKEN",
         TLS_CHECK,
         ("leader", "the cluster has a leader"),
         ("token", "the ACL token is valid"),
         ("agent", "the agent answers with version and datacenter"),
         ("services", "the profile's services are registered and passing")),
    _svc("telemetry", "control", "OTLP traces and metrics",
         "OTEL_EXPORTER_OTLP_ENDPOINT OTEL_EXPORTER_OTLP_PROTOCOL OTEL_EXPORTER_OTLP_HEADERS",
         ("endpoint", "the endpoint parses and matches the protocol"),
         TLS_CHECK,
         ("connect", "TCP connect to the collector"),
         ("export", "an empty OTLP export is accepted")),
    _svc("runtime", "execution", "the process that boot starts",
         "PLATFORM_RUNTIME_CMD",
         ("command", "the runtime command resolves to an executable"),
         ("port", "the runtime's port is free to bind")),
)

BY_NAME: dict[str, ServiceSpec] = {s.name: s for s in SERVICES}
CHECK_IDS: tuple[str, ...] = tuple(c for s in SERVICES for c in s.check_ids)


def services_in(plane: str) -> tuple[ServiceSpec, ...]:
    return tuple(s for s in SERVICES if s.plane == plane)
