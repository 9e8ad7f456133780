"""Secrets never leak (issue 4, item 2; DESIGN.md "Report": no output of any kind, report, logs,
tracebacks or `profile show`, ever contains a secret value).

One all-services stack is built per module (a real redis-server with a password and an ACL user,
the real gcp-storage-emulator, the HTTP emulators, an OAuth token stub for the service-account
path, a hung server, a closed port), and every credential in it is a distinctive canary. Every
command then runs, reached through the built-in `vm` profile's environment
keys (variant "vm") and through a custom profile whose URLs carry user:password and whose GCS
uses an inline service-account key (variant "sa"), under every fault (see in_process() for the
runs made in-process). Every stdout, stderr and $GITHUB_STEP_SUMMARY is searched for every
secret, whole or as any substring of 8+ characters, also after undoing the renderers' escapes
(JSON, XML, workflow commands) and line wrapping. The last test prints the number of runs.

    .venv/bin/python -m pytest tests/test_secret_audit.py -q -p no:cacheprovider
"""
from __future__ import annotations

import base64
import functools
import html
import json
import re
import secrets
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from tests.conftest import _start_redis
from tests.emulators.arango import ArangoEmulator
from tests.emulators.base import Emulator, json_reply, text_reply
from tests.emulators.consul import GOOD_TOKEN, ConsulEmulator, default_tokens
from tests.emulators.gcs import GcsEmulator, GcsStub
from tests.emulators.meilisearch import MeilisearchEmulator
from tests.emulators.otlp import OtlpEmulator
from tests.emulators.supabase import SupabaseEmulator
from tests.support import PLATCTL, clean_env, hung_server


def canary(what: str) -> str:
    """A distinctive value, random per session. `what` only documents the call: words in the
    value could also occur in honest output (a "consul-token" canary would match the header
    name X-Consul-Token), and two canaries must share no run of 8 characters but the prefix."""
    return f"LEAKCANARY-{secrets.token_hex(8)}"


REDIS_PW, REDIS_USER_PW, REDIS_WRONG = canary("redis-pw"), canary("redis-userpw"), \
    canary("redis-wrongpw")
ARANGO_PW, ARANGO_WRONG = canary("arango-pw"), canary("arango-wrongpw")
MEILI_KEY, MEILI_WRONG = canary("meili-key"), canary("meili-wrongkey")
CONSUL_TOKEN, CONSUL_WRONG = canary("consul-token"), canary("consul-wrongtoken")
CONSUL_URL_PW, OTEL_URL_PW = canary("consul-urlpw"), canary("otel-urlpw")
OTEL_KEY = canary("otel-apikey")
OTEL_HEADERS = f"x-api-key={OTEL_KEY},x-tenant=acme"
GCS_ACCESS_TOKEN = canary("gcs-accesstoken")  # what the token stub hands out
PRIVATE_KEY_ID = secrets.token_hex(20)  # 40 hex digits, as Google's
SA_EMAIL = "platform-runtime@leakprobe.iam.gserviceaccount.com"
REDIS_USER = "leakuser"
TIMEOUT = "1"  # where a peer never answers; elsewhere nothing waits, and a loaded machine
SLACK = "8"  # needs more than 1 s to import clients and pass a healthy check

FAULTS = ("healthy", "refused", "hang", "html", "http500", "reset", "garbage", "wrongcreds",
          "tls", "echo", "internal-check", "internal-top")
VARIANTS = ("vm", "sa")
RUNS: list[tuple[str, bool]] = []  # every run (label, in-process?), for the final count
LEAKS: list[str] = []
_lock = threading.Lock()


# -- the detector -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Secret:
    name: str  # says which credential it is, for the failure message
    value: str
    grams: bool = True  # also every substring of GRAM+ characters (False: the value embeds
    #                     public text, e.g. a service-account JSON holds the account's email)


GRAM = 8


def _json_unescape(text: str) -> str:
    return re.sub(r"\\(u[0-9a-fA-F]{4}|.)",
                  lambda m: chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "u" and
                  len(m.group(1)) == 5 else {"n": "\n", "t": "\t", "r": "\r"}.get(
                      m.group(1), m.group(1)), text)


def views(text: str):
    """The text as printed, and as a reader would reassemble it."""
    yield "as printed", text
    # Rich tables wrap long cells onto continuation lines whose other columns are blank
    yield "line breaks removed", re.sub(r"\s+", "", text)
    if "%" in text:  # GitHub workflow commands escape %, CR, LF; URLs percent-encode
        yield "percent-decoded", unquote(text)
    if "&" in text:  # JUnit XML
        yield "XML-unescaped", html.unescape(text)
    if "\\" in text:  # JSON strings, Python reprs
        yield "JSON-unescaped", _json_unescape(text)


# A JWT or any base64-encoded JSON object (the header of every JWT, a signed OAuth assertion):
# none belongs in platctl's output, whether or not we know its value.
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{10,}")


class Detector:
    def __init__(self, found: list[Secret]) -> None:
        self.secrets = [s for s in {s.value: s for s in found if s.value}.values()]
        self.grams: dict[str, list[Secret]] = {}
        for s in self.secrets:
            if s.grams:
                for i in range(len(s.value) - GRAM + 1):
                    self.grams.setdefault(s.value[i:i + GRAM], []).append(s)

    def scan(self, where: str, text: str) -> list[str]:
        """One finding per leaked secret (the first view and place it shows in)."""
        found: dict[str, str] = {}
        for how, view in views(text or ""):
            for s in self.secrets:
                if s.name not in found and s.value in view:
                    found[s.name] = self._say(s, "the whole value", how, where, view, s.value)
            i = 0
            while i <= len(view) - GRAM:
                candidates = self.grams.get(view[i:i + GRAM])
                if not candidates:
                    i += 1
                    continue
                # the secret sharing the longest run with the text is the one that leaked
                k, s = max(((self._run(view, i, c.value), c) for c in candidates),
                           key=lambda kc: kc[0])
                if s.name not in found:
                    found[s.name] = self._say(s, "part of it", how, where, view, view[i:i + k])
                i += k
            m = JWT_LIKE.search(view)
            if m and not found:
                jwt = Secret("a JWT / base64 JSON credential", m.group())
                found[jwt.name] = self._say(jwt, "the token", how, where, view, m.group())
        return list(found.values())

    @staticmethod
    def _run(view: str, i: int, value: str) -> int:
        k = GRAM
        while i + k < len(view) and view[i:i + k + 1] in value:
            k += 1
        return k

    @staticmethod
    def _say(s: Secret, what: str, how: str, where: str, view: str, needle: str) -> str:
        at = view.find(needle)
        ctx = view[max(0, at - 80):at + len(needle) + 40].replace("\n", "\\n")
        return f"{s.name}: {what} ({needle!r}) in {where} ({how}): ...{ctx}..."


def url_password(url: str) -> str | None:
    """The password part of a URL as its owner sees it: between the first ':' of the userinfo
    and the LAST '@' (an unencoded password may hold '@', '/', '#', '?')."""
    _, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo = rest.rpartition("@")[0]
    user, colon, pw = userinfo.partition(":")
    return pw if colon else user


def secrets_in(env: dict[str, str]) -> list[Secret]:
    """Every secret a run's environment holds, in every form a leak could take."""
    out: list[Secret] = []

    def add(name: str, value: str | None, grams: bool = True) -> None:
        if value:
            out.append(Secret(name, value, grams))
            if unquote(value) != value:
                out.append(Secret(name + " (URL-decoded)", unquote(value), grams))
            if quote(value, safe="") != value:
                out.append(Secret(name + " (URL-encoded)", quote(value, safe=""), grams))

    for key in ("REDIS_URL", "ARANGO_URL", "MEILISEARCH_URL", "SUPABASE_URL",
                "OTEL_EXPORTER_OTLP_ENDPOINT", "LEAK_CONSUL_URL"):
        pw = url_password(env.get(key, ""))
        add(f"the password part of {key}", pw)
        if pw:
            user = env[key].partition("://")[2].rpartition("@")[0].partition(":")[0]
            add(f"{key} credentials as HTTP Basic auth",
                base64.b64encode(f"{user}:{unquote(pw)}".encode()).decode())
    for key in ("ARANGO_PASSWORD", "MEILI_MASTER_KEY", "CONSUL_TOKEN", "LEAK_CONSUL_URL_PW"):
        add(key, env.get(key))
    if env.get("ARANGO_PASSWORD"):
        add("ARANGO_USERNAME:ARANGO_PASSWORD as HTTP Basic auth", base64.b64encode(
            f"{env.get('ARANGO_USERNAME', 'root')}:{env['ARANGO_PASSWORD']}".encode()).decode())
    for key in ("SUPABASE_SERVICE_KEY", "SUPABASE_ANON_KEY"):
        add(key, env.get(key))
        add(f"{key} (its JWT signature)", (env.get(key) or "").rpartition(".")[2] or None)
    headers = env.get("OTEL_EXPORTER_OTLP_HEADERS")
    if headers:
        add("OTEL_EXPORTER_OTLP_HEADERS", headers, grams=False)  # the header names are public
        for item in headers.split(","):
            name, _, value = item.partition("=")
            if name.strip().lower() == "x-api-key":
                add(f"the {name} value of OTEL_EXPORTER_OTLP_HEADERS", value)
    creds = env.get("GCS_CREDENTIALS_JSON")
    if creds:
        info = json.loads(creds)
        add("GCS_CREDENTIALS_JSON (whole)", creds, grams=False)
        add("GCS_CREDENTIALS_JSON (re-serialized)", json.dumps(info, separators=(",", ":")),
            grams=False)
        add("GCS_CREDENTIALS_JSON private_key_id", info["private_key_id"])
        body = "".join(ln for ln in info["private_key"].splitlines() if "-----" not in ln)
        add("GCS_CREDENTIALS_JSON private_key (PEM body)", body)
    return out


# -- the stack ----------------------------------------------------------------------------------
class Junk(Emulator):
    """An HTTP server that is no service at all: stands in for Redis and GCS under the HTTP
    faults (HTML page, 500, reset, garbage), where the Redis and GCS checks meet it."""

    name = "junk"

    def route(self, req):  # noqa: ANN001, ANN201
        return json_reply(404, {"error": "not found"})


CREDENTIAL_HEADERS = ("authorization", "apikey", "x-consul-token", "x-api-key")


def echo_route(real, req):  # noqa: ANN001, ANN201
    """A debugging proxy in front of the service that rejects every request carrying
    credentials with an error page echoing the request, credentials first (no truncation cuts
    them off); requests without credentials pass to the `real` service, so the checks get as
    far as their authenticated steps. The checks must relay none of it."""
    creds = " ".join(f"{k}={req.headers[k]}" for k in CREDENTIAL_HEADERS if k in req.headers)
    if not creds and b"assertion=" not in req.body:
        return real(req)
    said = (f"rejected {creds} for {req.method} {req.path}?{req.query}; headers: {req.headers};"
            f" body: {req.body[:3000]!r}")
    if req.method == "GET":  # each service's JSON error shape, for the paths that quote it
        return json_reply(401, {"error": said, "message": said, "errorMessage": said,
                                "code": "invalid_api_key", "msg": said, "errorNum": 11})
    return text_reply(500, said)


class RespEcho:
    """A TCP server that answers every Redis command with an error quoting it (AUTH user pw
    included), as a confused proxy or another protocol's server might."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _serve(conn: socket.socket) -> None:
        with conn:
            try:
                while data := conn.recv(65536):
                    words = " ".join(w for w in data.decode(errors="replace").split("\r\n")
                                     if w and w[0] not in "*$")
                    conn.sendall(f"-ERR unknown command '{words}'\r\n".encode())
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


@dataclass
class Stack:
    redis_port: int
    gcs: GcsEmulator
    stub: GcsStub
    arango: ArangoEmulator
    consul: ConsulEmulator
    meili: MeilisearchEmulator
    supabase: SupabaseEmulator
    otlp: OtlpEmulator
    junk: Junk
    resp_echo: RespEcho
    hung: int
    work: Path
    pem: str

    @property
    def http(self) -> list[Emulator]:
        return [self.stub, self.arango, self.consul, self.meili, self.supabase, self.otlp,
                self.junk]


def _rsa_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


SITECUSTOMIZE = '''
"""Leak probe: make platctl raise an exception whose text holds every secret of the run."""
import os

_MODE = os.environ.get("LEAKPROBE_RAISE")


def _text():
    import json
    env = os.environ
    keys = ("REDIS_URL", "ARANGO_URL", "ARANGO_PASSWORD", "SUPABASE_SERVICE_KEY",
            "SUPABASE_ANON_KEY", "GCS_CREDENTIALS_JSON", "MEILI_MASTER_KEY", "CONSUL_TOKEN",
            "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_ENDPOINT")
    parts = [f"{k}={env[k]}" for k in keys if env.get(k)]
    url = env.get("REDIS_URL", "")
    parts.append("password " + url.partition("://")[2].rpartition("@")[0].partition(":")[2])
    parts.append("jwt signature " + env.get("SUPABASE_SERVICE_KEY", "").rpartition(".")[2])
    parts += ["header value " + item.partition("=")[2]
              for item in env.get("OTEL_EXPORTER_OTLP_HEADERS", "").split(",")]
    if env.get("GCS_CREDENTIALS_JSON"):
        info = json.loads(env["GCS_CREDENTIALS_JSON"])
        parts += [repr(info), info["private_key"], "key id " + info["private_key_id"]]
    return "leak probe: " + " | ".join(parts)


def _boom(*args, **kw):
    raise RuntimeError(_text())


if _MODE == "check":  # inside checks (one gate, one non-gate): the runner's scrubber
    from platctl.checks import consul as _consul, redis as _redis
    _redis.RedisCheck.streams = _boom
    _consul.ConsulCheck.token = _boom
elif _MODE == "top":  # escapes the command: the last-line scrubber of __main__
    from platctl.commands import validate as _validate
    _load = _validate.load_profile

    def _load_then_raise(ref):
        _load(ref)
        _boom()
    _validate.load_profile = _load_then_raise
'''

RUNTIME = f"""#!{sys.executable}
print("leak-probe runtime started")
"""

# The "sa" variant's profile: user:password inside the URLs (some through ${{...}} inside the
# userinfo), GCS through an inline service-account key, no emulator.
SA_PROFILE = """\
name: leakprobe
description: every credential a canary
redis:
  url: "${REDIS_URL}"
arango:
  url: "${ARANGO_URL}"
  username: root
  password: "${ARANGO_PASSWORD}"
  database: platform
supabase:
  url: "${SUPABASE_URL}"
  service_key: "${SUPABASE_SERVICE_KEY}"
  anon_key: "${SUPABASE_ANON_KEY}"
gcs:
  project_id: leakprobe
  bucket: platform
  credentials_json: "${GCS_CREDENTIALS_JSON}"
meilisearch:
  url: "${MEILISEARCH_URL}"
  api_key: "${MEILI_MASTER_KEY}"
duckdb:
  path: "${DUCKDB_DATABASE_PATH}"
consul:
  url: "${CONSUL_SCHEME}://consul:${LEAK_CONSUL_URL_PW}@${CONSUL_HOST}:${CONSUL_PORT}"
  token: "${CONSUL_TOKEN}"
telemetry:
  endpoint: "${OTEL_EXPORTER_OTLP_ENDPOINT}"
  headers: "${OTEL_EXPORTER_OTLP_HEADERS}"
execution:
  command: "${PLATFORM_RUNTIME_CMD}"
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    work = tmp_path_factory.mktemp("secret-audit")
    with ExitStack() as es:
        redis = _start_redis(work, "--requirepass", REDIS_PW, "--user", REDIS_USER, "on",
                             f">{REDIS_USER_PW}", "~*", "&*", "+@all")
        es.callback(lambda: (redis.proc.terminate(), redis.proc.wait(10)))
        consul_tokens = {CONSUL_TOKEN: default_tokens()[GOOD_TOKEN]}
        s = Stack(redis_port=redis.port, gcs=es.enter_context(GcsEmulator(bucket="platform")),
                  stub=es.enter_context(GcsStub()),
                  arango=es.enter_context(ArangoEmulator(users={"root": ARANGO_PW})),
                  consul=es.enter_context(ConsulEmulator(tokens=consul_tokens)),
                  meili=es.enter_context(MeilisearchEmulator(master_key=MEILI_KEY)),
                  supabase=es.enter_context(SupabaseEmulator()),
                  otlp=es.enter_context(OtlpEmulator()), junk=es.enter_context(Junk()),
                  resp_echo=RespEcho(), hung=es.enter_context(hung_server()), work=work,
                  pem=_rsa_pem())
        es.callback(s.resp_echo.close)
        (work / "profiles").mkdir()
        (work / "profiles" / "leakprobe.yaml").write_text(SA_PROFILE)
        (work / "site").mkdir()
        (work / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
        runtime = work / "runtime"
        runtime.write_text(RUNTIME)
        runtime.chmod(0o755)
        yield s


CLOSED = "127.0.0.1:1"


def fault_env(s: Stack, variant: str, fault: str) -> dict[str, str]:
    """The platform contract's environment for one variant under one fault."""
    tls, wrong = fault == "tls", fault == "wrongcreds"
    http, rscheme = ("https", "rediss") if tls else ("http", "redis")
    junk_faults = ("html", "http500", "reset", "garbage", "echo")

    def addr(port: int, plain: bool = False) -> str:
        """Where a service is under this fault; `plain` ones (Redis, GCS) are no HTTP
        emulator: the junk server or the hung one stands in for them."""
        if fault == "refused":
            return CLOSED
        if plain and fault == "hang":
            return f"127.0.0.1:{s.hung}"
        if plain and fault == "echo" and port == s.redis_port:
            return f"127.0.0.1:{s.resp_echo.port}"
        if plain and fault in junk_faults:
            return f"127.0.0.1:{s.junk.port}"
        return f"127.0.0.1:{port}"

    if variant == "vm":
        redis_auth = f":{REDIS_WRONG if wrong else REDIS_PW}"
    else:
        redis_auth = f"{REDIS_USER}:{REDIS_WRONG if wrong else REDIS_USER_PW}"
    arango_pw = ARANGO_WRONG if wrong else ARANGO_PW
    arango = addr(s.arango.port)
    supa = s.supabase
    service_key, anon_key = (supa.anon_key, supa.service_role_key) if wrong else \
        (supa.service_role_key, supa.anon_key)
    consul = addr(s.consul.port)
    otlp = addr(s.otlp.port)
    env = {
        "REDIS_URL": f"{rscheme}://{redis_auth}@{addr(s.redis_port, plain=True)}/0",
        "ARANGO_URL": f"{http}://{arango}", "ARANGO_USERNAME": "root",
        "ARANGO_PASSWORD": arango_pw, "ARANGO_DATABASE": "platform",
        "SUPABASE_URL": f"{http}://{addr(supa.port)}", "SUPABASE_SERVICE_KEY": service_key,
        "SUPABASE_ANON_KEY": anon_key,
        "GCS_PROJECT_ID": "leakprobe", "GCS_BUCKET_NAME": "platform",
        "MEILISEARCH_URL": f"{http}://{addr(s.meili.port)}",
        "MEILI_MASTER_KEY": MEILI_WRONG if wrong else MEILI_KEY,
        "CONSUL_SCHEME": http, "CONSUL_HOST": consul.split(":")[0],
        "CONSUL_PORT": consul.split(":")[1],
        "CONSUL_TOKEN": CONSUL_WRONG if wrong else CONSUL_TOKEN,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"{http}://{otlp}",
        "OTEL_EXPORTER_OTLP_HEADERS": OTEL_HEADERS,
        "PLATFORM_RUNTIME_CMD": str(s.work / "runtime"),
        "PLATCTL_PROFILE_DIR": str(s.work / "profiles"),
        "COLUMNS": "100", "NO_COLOR": "1",
        # the custom profile builds its Consul URL with this password inside the userinfo
        "LEAK_CONSUL_URL_PW": CONSUL_URL_PW,
        "LEAK_CONSUL_URL": f"{http}://consul:{CONSUL_URL_PW}@{consul}",
    }
    token_uri = f"{http}://{CLOSED if fault == 'refused' else f'127.0.0.1:{s.stub.port}'}/token"
    env["GCS_CREDENTIALS_JSON"] = json.dumps({
        "type": "service_account", "project_id": "leakprobe", "private_key_id": PRIVATE_KEY_ID,
        "private_key": s.pem, "client_email": SA_EMAIL, "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri})
    if variant == "vm":  # anonymous against the emulator; the key is still in the profile
        env["STORAGE_EMULATOR_HOST"] = f"{http}://{addr(s.gcs.port, plain=True)}"
    else:  # user:password inside the HTTP URLs too
        env["ARANGO_URL"] = f"{http}://root:{arango_pw}@{arango}"
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"{http}://otel:{OTEL_URL_PW}@{otlp}"
    if fault.startswith("internal"):
        env["LEAKPROBE_RAISE"] = fault.partition("-")[2]
        env["PYTHONPATH"] = str(s.work / "site")
    return clean_env(**env)


def apply_fault(s: Stack, fault: str) -> None:
    for emu in s.http:
        emu.reset()
        emu.__dict__.pop("route", None)
    if fault in ("hang", "html", "http500", "reset", "garbage"):
        for emu in s.http:
            emu.fault = fault
    if fault == "echo":
        for emu in s.http:  # an instance attribute: the handler calls emu.route(req)
            emu.route = functools.partial(echo_route, type(emu).route.__get__(emu))
    s.stub.token_reply = json_reply(400, {"error": "invalid_grant", "error_description":
                                          "Invalid JWT Signature."}) if fault == "wrongcreds" \
        else json_reply(200, {"access_token": GCS_ACCESS_TOKEN, "expires_in": 3600,
                              "token_type": "Bearer"})


def all_secrets(s: Stack) -> list[Secret]:
    found = [Secret("the OAuth access token the token endpoint issued", GCS_ACCESS_TOKEN)]
    for variant in VARIANTS:
        for fault in FAULTS:
            found += secrets_in(fault_env(s, variant, fault))
    return found


@pytest.fixture(scope="module")
def detector(stack) -> Detector:
    return Detector(all_secrets(stack))


# -- running ------------------------------------------------------------------------------------
def in_process(args: tuple[str, ...], fault: str) -> bool:
    """validate -o json and boot run as real subprocesses (every byte a process writes, the
    real exit); the other formats render that same report, and the other commands start no
    check, so they run in-process (main() with the run's environment and captured streams),
    which spares a second of CPU each. Not under the internal-* faults, whose exception comes
    from a sitecustomize in the subprocess."""
    if fault.startswith("internal"):
        return args[0] in ("contract", "--help")
    return args[0] in ("contract", "--help", "profile") or (
        args[0] == "validate" and args[2] != "json")


def commands(variant: str, fault: str) -> list[tuple[str, ...]]:
    """validate in every format and boot for the `vm` profile; the "sa" variant's report holds
    the same fields, so one format suffices there."""
    profile = "vm" if variant == "vm" else "leakprobe"
    other = "leakprobe" if variant == "vm" else "vm"
    # hung peers, and TLS hellos to plaintext servers (which wait for a request line)
    waits = fault in ("hang", "tls")
    run = ("--timeout", TIMEOUT if waits else SLACK, "-p", profile)
    formats = ("table", "json", "junit", "github") if variant == "vm" else ("json",)
    cmds: list[tuple[str, ...]] = [("validate", "-o", fmt, "--keep-going", *run)
                                   for fmt in formats]
    cmds += [("boot", "-o", "table", *run)] if variant == "vm" else []
    cmds += [("diagnose", "all", "-o", fmt, *run) for fmt in ("table", "json")] \
        if variant == "vm" else []
    cmds += [("profile", "show", profile), ("profile", "diff", profile, other),
             ("contract",), ("contract", "-o", "json"), ("--help",)]
    return cmds


@dataclass
class Run:
    label: str
    args: tuple[str, ...]
    code: int
    outputs: dict[str, str]  # where -> text
    in_process: bool = False


def run_one(s: Stack, env: dict[str, str], label: str, args: tuple[str, ...],
            debug: bool, inproc: bool, n: int) -> Run:
    env = dict(env)
    summary = s.work / f"summary-{n}.md"
    summary.unlink(missing_ok=True)
    env["GITHUB_STEP_SUMMARY"] = str(summary)
    env["DUCKDB_DATABASE_PATH"] = str(s.work / "duckdb" / f"run-{n}.duckdb")
    if debug:
        env["PLATCTL_DEBUG"] = "1"
    if inproc:
        from platctl.__main__ import main

        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):  # Typer's help writes to sys.stdout
            code = main(list(args), env=env, stdout=out, stderr=err)
        outputs = {"stdout": out.getvalue(), "stderr": err.getvalue()}
    else:
        proc = subprocess.run([PLATCTL, *args], env=env, capture_output=True, text=True,
                              timeout=60, errors="replace")
        code, outputs = proc.returncode, {"stdout": proc.stdout, "stderr": proc.stderr}
    if summary.exists():
        outputs["$GITHUB_STEP_SUMMARY"] = summary.read_text(errors="replace")
    return Run(label, args, code, outputs, inproc)


_counter = iter(range(10**6))
Job = tuple[dict[str, str], str, tuple[str, ...], bool, bool]  # env, label, args, debug, inproc


def run_all(s: Stack, detector: Detector, jobs: list[Job]) -> tuple[list[Run], list[str]]:
    """Subprocesses three at a time; in-process runs meanwhile, in this thread (main() sets
    process-wide streams). Returns the runs and every leak found in them."""
    numbered = [(job, next(_counter)) for job in jobs]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(run_one, s, *job, n) for job, n in numbered if not job[4]]
        runs = [run_one(s, *job, n) for job, n in numbered if job[4]]
        runs += [f.result() for f in futures]
    leaks = []
    for r in runs:
        for where, text in r.outputs.items():
            leaks += [f"`{r.label}` (exit {r.code}): {leak}"
                      for leak in detector.scan(where, text)]
    with _lock:
        RUNS.extend((r.label, r.in_process) for r in runs)
        LEAKS.extend(leaks)
    return runs, leaks


def report_json(run: Run) -> dict:
    return json.loads(run.outputs["stdout"] if run.args[0] == "validate" else
                      run.outputs["stderr"])


# -- the matrix ---------------------------------------------------------------------------------
@pytest.mark.parametrize("fault", FAULTS)
def test_no_secret_in_any_output(stack, detector, fault):
    apply_fault(stack, fault)
    jobs = []
    for variant in VARIANTS:
        env = fault_env(stack, variant, fault)
        for i, args in enumerate(commands(variant, fault)):
            debug = variant == "sa" or i % 2 == 1  # PLATCTL_DEBUG=1 in about half the runs
            jobs.append((env, f"{variant}/{fault}: platctl {' '.join(args)}", args, debug,
                         in_process(args, fault)))
    try:
        runs, leaks = run_all(stack, detector, jobs)
    finally:
        apply_fault(stack, "healthy")
    assert not leaks, f"{len(leaks)} leak(s):\n" + "\n".join(leaks)
    _sanity(fault, runs)


def _sanity(fault: str, runs: list[Run]) -> None:
    """The audit is only worth something if the runs really used the credentials: healthy
    means authenticated, each fault shows up as failures, internal errors as exit 3."""
    def find(variant: str, *args: str) -> Run:
        return next(r for r in runs if r.label.startswith(f"{variant}/") and
                    r.args[:len(args)] == args)

    for variant in VARIANTS:
        json_run = find(variant, "validate", "-o", "json")
        for r in runs:
            if r.args in (("contract",), ("contract", "-o", "json"), ("--help",)):
                assert r.code == 0, (r.label, r.outputs)
        if fault == "internal-top":
            assert json_run.code == 3 and "internal error" in json_run.outputs["stderr"], \
                json_run.outputs
            assert "Traceback" in json_run.outputs["stderr"]  # PLATCTL_DEBUG=1: scrubbed too
            assert find(variant, "profile", "show").code == 3
            continue
        assert find(variant, "profile", "show").code == 0, find(variant, "profile", "show")
        assert find(variant, "profile", "diff").code == 0
        checks = {c["id"]: c for c in report_json(json_run)["checks"]}
        if fault == "internal-check":
            assert json_run.code == 3, json_run.outputs
            assert checks["consul.token"]["reason"] == "internal", checks["consul.token"]
            assert "leak probe" in checks["consul.token"]["message"]
            continue
        if fault == "healthy":
            passing = ["redis.ping", "redis.canary", "arango.auth", "arango.collections",
                       "supabase.keys", "supabase.rest", "meilisearch.auth", "consul.token",
                       "telemetry.export"]
            passing += ["gcs.canary"] if variant == "vm" else ["gcs.credentials"]
            bad = {i: checks[i]["message"] for i in passing if checks[i]["status"] != "pass"}
            assert not bad, bad
        else:
            internal = {i: c["message"] for i, c in checks.items() if c["reason"] == "internal"}
            assert json_run.code == 1 and not internal, (json_run.label, internal)
            # redis.tls gates redis.ping: the first of them fails (a TLS fault: the certificate
            # check). A worker starved past its 1 s deadline while importing its client (start-up
            # counts: a loaded machine) is blamed on redis.ping, saying so, and redis.tls is
            # then `not run`.
            starved = "before contacting the service" in checks["redis.ping"]["message"]
            first = "redis.tls" if fault == "tls" and not starved else "redis.ping"
            assert checks[first]["status"] == "fail", \
                {i: (checks[i]["status"], checks[i]["message"]) for i in ("redis.tls", "redis.ping")}
        if fault == "wrongcreds":
            for cid in ("redis.ping", "arango.auth", "supabase.keys", "meilisearch.auth",
                        "consul.token"):
                assert checks[cid]["status"] == "fail", checks[cid]


# -- URLs with credentials in profiles, valid and not ---------------------------------------
ODD_PW = f"LEAKCANARY#odd/pw?x@{secrets.token_hex(6)}"  # not percent-encoded: / ? # @
URL_PW = canary("url-pw")
URL_CASES = {  # env key -> value; every one holds URL_PW or ODD_PW as its password part
    "port out of range": ("REDIS_URL", f"redis://{REDIS_USER}:{URL_PW}@127.0.0.1:99999/0"),
    "port not a number": ("REDIS_URL", f"redis://{REDIS_USER}:{URL_PW}@127.0.0.1:sixthree/0"),
    "wrong scheme": ("REDIS_URL", f"http://{REDIS_USER}:{URL_PW}@127.0.0.1:6379/0"),
    "no host": ("REDIS_URL", f"redis://{REDIS_USER}:{URL_PW}@/0"),
    "broken IPv6 host": ("REDIS_URL", f"redis://{REDIS_USER}:{URL_PW}@[::1/0"),
    "password only (no user)": ("REDIS_URL", f"redis://:{URL_PW}@127.0.0.1:1/0"),
    "token as the user": ("REDIS_URL", f"redis://{URL_PW}@127.0.0.1:1/0"),
    "unencoded / ? # @ in the password": ("REDIS_URL",
                                          f"redis://{REDIS_USER}:{ODD_PW}@127.0.0.1:1/0"),
    "percent-encoded password": ("REDIS_URL",
                                 f"redis://{REDIS_USER}:{quote(ODD_PW, safe='')}@127.0.0.1:1/0"),
    "https user:pass, refused": ("ARANGO_URL", f"https://arango:{URL_PW}@127.0.0.1:1"),
    "https user:pass, bad port": ("ARANGO_URL", f"https://arango:{URL_PW}@127.0.0.1:123456"),
    "https user:pass, TLS to plaintext": ("MEILISEARCH_URL", "https://meili:{pw}@{junk}"),
    "https user:pass, wrong scheme": ("OTEL_EXPORTER_OTLP_ENDPOINT",
                                      f"ftp://otel:{URL_PW}@127.0.0.1:4318"),
    "https user:pass, unencoded odd password": ("SUPABASE_URL",
                                                f"https://sb:{ODD_PW}@127.0.0.1:1"),
}
SERVICE_OF = {"REDIS_URL": "redis", "ARANGO_URL": "arango", "MEILISEARCH_URL": "meilisearch",
              "OTEL_EXPORTER_OTLP_ENDPOINT": "telemetry", "SUPABASE_URL": "supabase"}


def test_urls_with_credentials_never_show_their_password(stack, tmp_path):
    jobs = []
    found: list[Secret] = []
    for case, (key, value) in URL_CASES.items():
        value = value.format(pw=URL_PW, junk=f"127.0.0.1:{stack.junk.port}")
        env = fault_env(stack, "vm", "healthy")
        env[key] = value
        found += secrets_in(env)
        path = tmp_path / f"{len(jobs)}.yaml"  # the same URL written inline in a profile file
        path.write_text(SA_PROFILE.replace("${" + key + "}", value.replace("$", "$$")))
        for args in (("profile", "show", "vm"),
                     ("validate", "-o", "json", "--timeout", TIMEOUT, "--only", SERVICE_OF[key]),
                     ("profile", "lint", str(path)), ("profile", "show", str(path))):
            jobs.append((env, f"url/{case}: platctl {' '.join(args)}", args, True,
                         args[0] == "profile"))
    det = Detector([*found, Secret("the URL password", URL_PW),
                    Secret("the unencoded odd password", ODD_PW),
                    *(Secret(f"the odd password's part {p!r}", p)
                      for p in re.split(r"[/?#@]", ODD_PW) if len(p) >= GRAM)])
    runs, leaks = run_all(stack, det, jobs)
    assert not leaks, f"{len(leaks)} leak(s):\n" + "\n".join(leaks)
    for r in runs:  # each one said something useful, and nothing crashed
        assert r.code in (0, 1, 2), (r.label, r.outputs)
        if "bad port" in r.label or "port" in r.label and "range" in r.label:
            assert r.code == 2 and "port" in r.outputs["stderr"], (r.label, r.outputs)
        if r.args[:2] == ("profile", "show") and r.code == 0:  # masked, not dropped
            assert "***" in r.outputs["stdout"], (r.label, r.outputs)


# -- the Profile object in-process --------------------------------------------------------------
def test_profile_object_repr_str_format_and_dumps(stack):
    from platctl.profiles.loader import load_path

    env = fault_env(stack, "sa", "healthy")
    env["DUCKDB_DATABASE_PATH"] = "x.duckdb"
    profile = load_path(stack.work / "profiles" / "leakprobe.yaml", env)
    assert profile.redis.url.get_secret_value() == env["REDIS_URL"]  # the secrets are in there
    det = Detector(secrets_in(env))
    texts = {"repr(profile)": repr(profile), "str(profile)": str(profile),
             "f'{profile}'": f"{profile}", "format(profile, '')": format(profile, ""),
             "model_dump_json()": profile.model_dump_json(),
             "str(model_dump())": str(profile.model_dump()),
             "repr(model_dump(mode='json'))": repr(profile.model_dump(mode="json")),
             "repr(vars(profile))": repr(vars(profile))}
    for name in type(profile).model_fields:
        section = getattr(profile, name)
        texts[f"repr(profile.{name})"] = repr(section)
        texts[f"str(profile.{name})"] = str(section)
        for field in getattr(type(section), "model_fields", {}):
            value = getattr(section, field)
            texts[f"str/repr/format(profile.{name}.{field})"] = \
                f"{value} {value!r} {value!s:>10} {format(value, '')}"
    leaks = [leak for where, text in texts.items() for leak in det.scan(where, text)]
    assert not leaks, "\n".join(leaks)
    assert "***" in str(profile.redis.url) and REDIS_USER in str(profile.redis.url)


# -- the detector itself ------------------------------------------------------------------------
def test_detector_catches_planted_secret(stack, detector):
    """If redaction broke, the matrix would fail: a secret-looking value planted in a field that
    is not secret (gcs.bucket) is printed by platctl, and the detector must name it and where."""
    # not LEAKCANARY-: platctl masks any run of 8+ characters it shares with its own secrets
    planted = f"planted-{secrets.token_hex(10)}"
    env = fault_env(stack, "vm", "healthy")
    env["GCS_BUCKET_NAME"] = planted
    det = Detector([*all_secrets(stack), Secret("the planted gcs.bucket", planted)])
    run = run_one(stack, env, "selftest", ("validate", "-o", "json", "--only", "gcs"), False,
                  False, next(_counter))
    leaks = det.scan("stdout", run.outputs["stdout"])
    assert leaks and leaks[0].startswith("the planted gcs.bucket: the whole value") \
        and "in stdout" in leaks[0], (leaks, run.outputs)
    shown = run_one(stack, env, "selftest", ("profile", "show", "vm"), False, True,
                    next(_counter))
    assert det.scan("stdout", shown.outputs["stdout"])
    with _lock:
        RUNS.extend([("selftest: validate", False), ("selftest: profile show", True)])


def test_detector_sees_through_escapes_wrapping_and_fragments():
    s = Secret("the test secret", "LEAKCANARY-unit-secret-0123abcd")
    det = Detector([s])
    v = s.value
    assert not det.scan("x", "nothing to see here: LEAKCAN, unit se, 0123ab")
    for text in (f"msg {v}", f"::error::a%0A{v[:12]}%25", f"<failure message=\"{v[5:14]}\"/>",
                 f"| {v[:10]}\n| {v[10:]}", json.dumps({"m": f'"{v}"'}),
                 f"<failure message=\"x &amp; {v}\"/>", f"token {v[3:11]} cut...",
                 "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"):
        assert det.scan("x", text), text


def test_scrubber_masks_cut_secrets_but_not_words():
    """The last-line scrubber (runner messages, __main__) against what the echo fault showed:
    server text truncated mid-secret by a message's length limit."""
    from platctl.secrets import WholeOnly, scrub

    key, pw = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.c2lnbmF0dXJlLXNlY3JldA", \
        "not-the-password-991"
    known = {key, pw, "sb_publishable_0123456789abcdef", WholeOnly('{"client_email": "a@b"}')}
    det = Detector([Secret("key", key), Secret("pw", pw)])
    for text in (f"rejected Bearer {key[:60]}...", f"(... {key[30:]})", f"got '{pw[:12]}'"):
        assert not det.scan("scrubbed", scrub(text, known)), scrub(text, known)
    for honest in ("wrong username or password for user root", "a publishable key"
                   " (sb_publishable_, role anon)", "JWT header eyJhbGciOiJIUzI1NiJ9.",
                   'service account a@b: {"client_email": "x"}'):
        assert scrub(honest, known) == honest


def test_zz_count(capsys):
    """Last in the file: the total, written to the terminal whatever the capture mode."""
    inproc = sum(1 for _, i in RUNS if i)
    with capsys.disabled():
        sys.stdout.write(f"\nsecret audit: {len(RUNS)} runs (command × format × fault;"
                         f" {len(RUNS) - inproc} subprocesses, {inproc} in-process),"
                         f" {len(LEAKS)} leaks\n")
    assert not LEAKS
    assert len(RUNS) >= len(FAULTS) * 2 * 10
