"""Google Cloud Storage: the platform's blob bytes.

google-cloud-storage waits 60 s per request and retries for 120 s by default (protocols.md §5),
so every call passes `retry=None` and `timeout=(t, t)`. The endpoint is always given
explicitly (the emulator's, else storage.googleapis.com): the library would otherwise read
STORAGE_EMULATOR_HOST / API_ENDPOINT_OVERRIDE from the process environment, which is not the
profile. The requests sessions ignore the environment too (REQUESTS_CA_BUNDLE would silently
override the one CA setting), as HttpProbe does.

--read-only skips the canary but still asks testIamPermissions for create/get/delete: asking
writes nothing, and the platform needs all three whatever flags platctl runs with.
"""
from __future__ import annotations

import json
import os
import re
import secrets
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, skip, warn
from platctl.checks.errors import TLS_HINT, classify, describe, mixup
from platctl.result import Reason
from platctl.secrets import clip

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
PERMISSIONS = ("storage.objects.create", "storage.objects.get", "storage.objects.delete")
REQUIRED_FIELDS = ("client_email", "private_key", "token_uri", "project_id")
CANARY_PREFIX = "platctl-canary/"
# GCS has no TTL. A canary's name starts with the time after which it is an orphan (the run
# that wrote it is over: killed mid-canary, or its upload landed after it gave up), and
# every run that may write deletes the expired ones it finds in close(): the names, not the
# age, say what is dead, so a concurrent run's live canary is never touched. The margin
# beyond the writing run's worst case (4 bounded calls) covers clock skew between hosts.
ORPHAN_MARGIN = 600
SWEEP_MAX = 20  # names sort by expiry: the most expired come first
_EXPIRES = re.compile(re.escape(CANARY_PREFIX) + r"(\d{10})-")
_GONE = (Reason.TIMEOUT, Reason.REFUSED, Reason.RESET)  # the server stopped answering


class GcsCheck(ServiceCheck):
    service = "gcs"
    env = {"project_id": "GCS_PROJECT_ID", "bucket": "GCS_BUCKET_NAME",
           "credentials_json": "GCS_CREDENTIALS_JSON", "emulator_host": "STORAGE_EMULATOR_HOST"}

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        self._pending: Any = None  # a canary blob that may exist and is not deleted yet
        self._may_sweep = False  # the canary went through: this run may write and delete

    # -- configuration ------------------------------------------------------------------------
    @cached_property
    def emulator(self) -> str | None:
        host = (self.cfg.emulator_host or "").strip().rstrip("/")
        if not host:
            return None
        if "://" not in host:  # other GCS clients accept host:port; the Python one needs a scheme
            host = "http://" + host
        try:
            parts = urlsplit(host)
            parts.port  # noqa: B018 - raises ValueError when not a number
        except ValueError:
            parts = None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise CheckFailed(Reason.CONFIG, f"the emulator endpoint {host!r} is not an http(s)"
                              " URL", self.hint("emulator_host"))
        return host

    @cached_property
    def target(self) -> str:
        return _host_port(self.emulator or DEFAULT_ENDPOINT)

    @cached_property
    def info(self) -> dict[str, Any]:
        """The service-account JSON (inline, or a file path), checked field by field. Messages
        never quote the value or a parser excerpt: it holds the private key."""
        if self.cfg.credentials_json is None:
            raise CheckFailed(Reason.MISSING, "no service-account credentials configured (needed"
                              " unless an emulator is used)", self.hint("credentials_json"))
        raw = self.cfg.credentials_json.get_secret_value().strip()
        source = "the inline credentials"
        if not raw.startswith(("{", "[")):
            path = os.path.expanduser(raw)
            if len(raw) > 4096 or "\n" in raw or not os.path.isfile(path):
                raise CheckFailed(Reason.CONFIG, "the credentials are neither inline JSON nor the"
                                  " path of an existing file", self.hint("credentials_json"))
            try:
                with open(path, encoding="utf-8") as fh:
                    raw, source = fh.read(), "the credentials file"
            except (OSError, UnicodeDecodeError) as exc:
                raise CheckFailed(Reason.CONFIG, "cannot read the credentials file"
                                  f" ({type(exc).__name__})",
                                  self.hint("credentials_json")) from None
        try:
            info = json.loads(raw)
        except ValueError as exc:  # position only: the parser's own text may quote the key
            where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
            raise CheckFailed(Reason.CONFIG, f"{source}: not valid JSON{where}",
                              self.hint("credentials_json")) from None
        kind = info.get("type") if isinstance(info, dict) else None
        if kind != "service_account":
            what = repr(kind) if isinstance(kind, str) and len(kind) < 40 else "missing"
            raise CheckFailed(Reason.CONFIG, f"not a service-account key (type is {what},"
                              " expected 'service_account')", self.hint("credentials_json"))
        missing = [f for f in REQUIRED_FIELDS if not isinstance(info.get(f), str) or not info[f]]
        if missing:
            raise CheckFailed(Reason.CONFIG, f"the service-account key lacks {', '.join(missing)}",
                              self.hint("credentials_json"))
        return info

    @cached_property
    def credentials(self) -> Any:
        if self.emulator:
            from google.auth.credentials import AnonymousCredentials
            return AnonymousCredentials()
        from google.oauth2 import service_account
        try:
            return service_account.Credentials.from_service_account_info(self.info)
        except ValueError:  # the library's text may quote key material: never relay it
            raise CheckFailed(Reason.CONFIG, "the private_key of the service account is not a"
                              " valid PEM private key", self.hint("credentials_json")) from None

    @cached_property
    def email(self) -> str:
        return "anonymous (emulator)" if self.emulator else self.info["client_email"]

    @cached_property
    def client(self) -> Any:
        import requests
        from google.auth.transport.requests import AuthorizedSession
        from google.cloud import storage

        verify: Any = self.ctx.ca_file or True
        token_session = requests.Session()  # token refreshes: no adapter retries, same CA
        token_session.trust_env, token_session.verify = False, verify
        # No refresh-and-retry on 401: the token is fresh, a retry only doubles the wait, and
        # anonymous (emulator) credentials raise InvalidOperation when asked to refresh.
        http = AuthorizedSession(self.credentials, auth_request=_one_attempt(token_session, self.budget),
                                 refresh_status_codes=())
        http.trust_env, http.verify = False, verify
        project = self.cfg.project_id or (None if self.emulator else self.info["project_id"])
        try:
            client = storage.Client(project=project, credentials=self.credentials, _http=http,
                                    client_options={"api_endpoint": self.emulator
                                                    or DEFAULT_ENDPOINT})
        except ValueError as exc:  # universe_domain of the key does not match the endpoint
            raise CheckFailed(Reason.CONFIG, f"cannot use these credentials: {_short(exc)}",
                              self.hint("credentials_json")) from None
        # 3.17's bucket-metadata cache fetches in background threads with the 60 s / 120 s
        # defaults on a cache miss or a 404: requests we cannot bound. Its only public switch
        # is an environment variable, not ours to set (checks run in threads).
        client._bucket_metadata_cache = None
        return client

    @cached_property
    def bucket(self) -> Any:
        return self.client.bucket(self.cfg.bucket)

    @property
    def timeout(self) -> tuple[float, float]:
        budget = self.budget()  # the step's time left (the first step's includes imports)
        return (budget, budget)

    def prepare(self) -> None:
        # Importing google-cloud-storage takes ~0.45 s. Here it is inside the service's
        # clock (runner._due) but before any step starts, so a step's guaranteed half of
        # the timeout is spent waiting on GCS, never on the import.
        import google.cloud.storage  # noqa: F401
        import google.oauth2.service_account  # noqa: F401

    def steps(self) -> Sequence[Step]:
        return (Step("gcs.credentials", self.check_credentials),
                Step("gcs.bucket", self.check_bucket),
                Step("gcs.permissions", self.check_permissions, gate=False),
                Step("gcs.canary", self.canary, gate=False))

    def close(self) -> None:
        self._delete_canary()  # left behind by an interrupted or unanswered canary step
        if self._may_sweep and not self.ctx.cancel.is_set():
            self._sweep()
        if "client" in self.__dict__:
            self.client.close()

    # -- steps --------------------------------------------------------------------------------
    def check_credentials(self) -> str | Outcome:
        if self.emulator:
            extra = " (credentials_json ignored)" if self.cfg.credentials_json else ""
            return f"emulator at {self.emulator}, anonymous credentials (local sandbox){extra}"
        self.credentials  # noqa: B018 - parses the private key
        email, own = self.info["client_email"], self.info["project_id"]
        msg = f"service account {email} (project {own})"
        if self.cfg.project_id and self.cfg.project_id != own:
            return warn(f"{msg}, but the profile's project is {self.cfg.project_id}: fine if the"
                        " account is granted access across projects, else the wrong key",
                        self.hint("project_id", "credentials_json"))
        return msg

    def check_bucket(self) -> str:
        self._call("GET bucket", "storage.buckets.get", self.bucket.reload)
        where = f"on the emulator at {self.target}" if self.emulator else f"at {self.target}"
        facts = ", ".join(x for x in (self.bucket.location, self.bucket.storage_class) if x)
        return f"bucket {self.cfg.bucket} exists {where}" + (f" ({facts})" if facts else "")

    def check_permissions(self) -> str | Outcome:
        try:
            held = self._call("testIamPermissions", "access to testIamPermissions",
                              self.bucket.test_iam_permissions, list(PERMISSIONS))
        except CheckFailed as failed:
            if failed.reason is Reason.MISSING:  # the bucket passed: the route is what is missing
                # gcp-storage-emulator before 2026.7.18 has no IAM routes; real GCS always does.
                return warn("the endpoint does not implement testIamPermissions (an old"
                            " emulator?): permissions not verified", self.hint("emulator_host"))
            raise
        missing = [p for p in PERMISSIONS if p not in set(held or ())]
        if missing:
            raise CheckFailed(Reason.FORBIDDEN, f"{self.email} lacks {', '.join(missing)} on"
                              f" bucket {self.cfg.bucket}",
                              f"grant them to {self.email} (e.g. roles/storage.objectUser on the"
                              f" bucket), or {self.hint('credentials_json', 'bucket')}")
        note = " (the emulator grants everything)" if self.emulator else ""
        return f"objects create/get/delete granted to {self.email}{note}"

    def canary(self) -> str | Outcome:
        if self.ctx.read_only:
            return skip("skipped: --read-only")
        expires = int(time.time() + 4 * self.ctx.timeout + ORPHAN_MARGIN)
        name = f"{CANARY_PREFIX}{expires}-{self.ctx.run_id}-{secrets.token_hex(4)}"
        data = f"platctl canary {secrets.token_hex(8)}\n".encode()
        blob = self._pending = self.bucket.blob(name)
        gone = False
        try:
            self._call(f"upload of {name}", "storage.objects.create", blob.upload_from_string,
                       data, content_type="text/plain", if_generation_match=0)
            got = self._call(f"download of {name}", "storage.objects.get",
                             blob.download_as_bytes, missing=f"the canary {name} was not found"
                             " right after its upload")
            self._call(f"delete of {name}", "storage.objects.delete", blob.delete,
                       missing=f"the canary {name} was not found when deleting it")
            self._pending, self._may_sweep = None, True
        except CheckFailed as failed:
            gone = failed.reason in _GONE
            raise
        finally:
            # A server that stopped answering would cost a second timeout here and turn our
            # verdict into the runner's generic one: close() deletes it after the verdict.
            if not gone:
                self._delete_canary()
        if got != data:
            raise CheckFailed(Reason.UNEXPECTED, f"the canary {name} read back different bytes",
                              self.hint("bucket"))
        return f"canary {name} written, read back and deleted"

    # -- helpers ------------------------------------------------------------------------------
    def _call(self, what: str, permission: str, fn: Any, *args: Any,
              missing: str | None = None, **kw: Any) -> Any:
        """One bounded attempt of a library call; every failure becomes a CheckFailed."""
        try:
            return fn(*args, retry=None, timeout=self.timeout, **kw)
        except CheckFailed:
            raise
        except Exception as exc:  # noqa: BLE001 - classified below, or re-raised as a bug
            raise _classify(self, what, permission, exc, missing) from None

    def _sweep(self) -> None:
        """Delete expired canaries of earlier runs (see ORPHAN_MARGIN). Best effort: listing
        needs storage.objects.list, which the platform itself does not; the next run retries."""
        now = time.time()
        try:
            for blob in self.client.list_blobs(self.bucket, prefix=CANARY_PREFIX,
                                               max_results=SWEEP_MAX, retry=None,
                                               timeout=self.timeout):
                m = _EXPIRES.match(blob.name)
                if m and int(m[1]) < now:
                    blob.delete(retry=None, timeout=self.timeout)
        except Exception:  # noqa: BLE001 - housekeeping: never a verdict
            pass

    def _delete_canary(self) -> None:
        blob, self._pending = self._pending, None
        if blob is None:
            return
        try:
            blob.delete(retry=None, timeout=self.timeout)
        except Exception:  # noqa: BLE001 - best effort: absent already, or the server is gone
            pass


def _one_attempt(session: Any, budget: Any) -> Any:
    """A token-endpoint transport that gives up on the first 5xx/408/429: google-auth retries
    those itself with exponential backoff (1 s, 2 s...), with no switch on the credentials.
    Its own default timeout is 120 s, so the step's budget bounds every token request."""
    from google.auth import exceptions as ax
    from google.auth.transport import DEFAULT_RETRYABLE_STATUS_CODES
    from google.auth.transport.requests import Request

    class OneAttempt(Request):
        def __call__(self, *args: Any, **kw: Any) -> Any:
            left, given = budget(), kw.get("timeout")
            if isinstance(given, tuple):  # (connect, read)
                kw["timeout"] = tuple(min(t or left, left) for t in given)
            else:
                kw["timeout"] = min(given or left, left)
            resp = super().__call__(*args, **kw)
            if resp.status in DEFAULT_RETRYABLE_STATUS_CODES or resp.status >= 500:
                raise ax.RefreshError(f"the token endpoint answered HTTP {resp.status}",
                                      retryable=True)
            if 200 <= resp.status < 300 and not _is_json_object(resp.data):
                # google-auth would index a proxy's HTML page like a dict: TypeError, a "bug"
                raise ax.RefreshError(f"the token endpoint answered HTTP {resp.status} with"
                                      " something that is not OAuth JSON (an HTML page?)",
                                      retryable=True)
            return resp

    return OneAttempt(session)


def _is_json_object(data: Any) -> bool:
    try:
        return isinstance(json.loads(data), dict)
    except (ValueError, TypeError):
        return False


def _classify(check: GcsCheck, what: str, permission: str, exc: Exception,
              missing: str | None) -> CheckFailed:
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ax

    target = check.target
    key = "emulator_host" if check.emulator else "credentials_json"
    if isinstance(exc, ax.RefreshError):  # the token endpoint answered, and said no
        said = _short(exc.args[0] if exc.args else exc)
        said = "an HTML page" if said.startswith("<") else said  # a proxy's page, not OAuth
        if getattr(exc, "retryable", False):
            return CheckFailed(Reason.SERVER, f"getting an OAuth token for {check.email} failed:"
                               f" {said}", check.hint("credentials_json"))
        return CheckFailed(Reason.AUTH, f"credentials rejected: the token endpoint refused"
                           f" {check.email} ({said}); the key may be deleted or disabled",
                           check.hint("credentials_json"))
    if isinstance(exc, gx.GoogleAPICallError) and exc.code is not None:
        return _http_failure(check, what, permission, exc, missing)
    if isinstance(exc, json.JSONDecodeError):  # a 2xx whose body is not JSON
        return CheckFailed(Reason.UNEXPECTED, f"{what} at {target} answered with something that"
                           " is not JSON (an HTML page?): is the endpoint the GCS JSON API?",
                           check.hint(key))
    if isinstance(exc, (ax.TransportError, OSError)) or type(exc).__module__.startswith(
            ("requests", "urllib3", "google.resumable_media", "google.cloud.storage")):
        reason = None if _not_http(exc) else classify(exc)
        if reason is None:
            return CheckFailed(Reason.UNEXPECTED, f"{target} did not answer {what} with valid"
                               " HTTP: is the endpoint the GCS JSON API?", check.hint(key))
        token = isinstance(exc, ax.TransportError) and not check.emulator
        if token:  # google-auth wraps only its own (token endpoint) transport errors
            target = _host_port(check.info["token_uri"])
        hint = check.hint("emulator_host") if check.emulator else \
            f"check that {target} is reachable (firewall, proxy, DNS)"
        msg = describe(reason, target, check.ctx.timeout, exc)
        if not token:  # the token endpoint is https by definition: no mix-up to name there
            msg += mixup(reason, (check.emulator or DEFAULT_ENDPOINT).startswith("https:"), exc)
        return CheckFailed(reason, msg + (" (getting an OAuth token)" if token else ""),
                           f"{TLS_HINT}; {hint}" if reason is Reason.TLS else hint)
    if _raised_in_library(exc):  # e.g. api_core indexing {"error": "not found"} like GCS's dict
        return CheckFailed(Reason.UNEXPECTED, f"{what} at {target} got an answer the client"
                           f" library cannot read ({type(exc).__name__}): is the endpoint the GCS"
                           " JSON API?", check.hint(key))
    raise exc


def _raised_in_library(exc: BaseException) -> bool:
    """The innermost frame is google-cloud/google-auth/requests code: it choked on an answer."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    name = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return name.startswith(("google.", "requests.", "urllib3."))


def _http_failure(check: GcsCheck, what: str, permission: str, exc: Any,
                  missing: str | None) -> CheckFailed:
    code, resp = exc.code, getattr(exc, "response", None)
    ctype = (getattr(resp, "headers", None) or {}).get("content-type", "")
    body = getattr(resp, "content", b"") or b""
    html = "html" in ctype or body.lstrip()[:1] == b"<"
    detail = "an HTML page" if html else _short(_server_message(body) or "no details")
    key = "emulator_host" if check.emulator else "credentials_json"
    bucket = check.cfg.bucket
    if code == 503:  # GCS's own "backendError", or a proxy in front without an upstream
        return CheckFailed(Reason.UNAVAILABLE, f"{what} at {check.target} answered HTTP 503"
                           f" ({detail}): the service is unavailable", check.hint(key))
    if code >= 500:
        return CheckFailed(Reason.SERVER, f"{what} at {check.target} failed with HTTP {code}"
                           f" ({detail})", check.hint(key))
    if html:  # a 404 page from a proxy or another web server is not "bucket missing"
        return CheckFailed(Reason.UNEXPECTED, f"{what} at {check.target} answered HTTP {code}"
                           " with an HTML page, not the GCS JSON API: is the endpoint right?",
                           check.hint(key))
    if code == 401 and check.emulator:
        return CheckFailed(Reason.AUTH, f"{check.target} answered 401 ({detail}): an emulator"
                           " takes anonymous requests; is this a real GCS endpoint?",
                           check.hint("emulator_host"))
    if code == 401:
        return CheckFailed(Reason.AUTH, f"credentials rejected: GCS answered 401 for"
                           f" {check.email} ({detail})", check.hint("credentials_json"))
    if code == 403:
        return CheckFailed(Reason.FORBIDDEN, f"{check.email} lacks {permission} on bucket"
                           f" {bucket}", check.hint("emulator_host", "bucket") if check.emulator
                           else f"grant {permission} on the bucket to {check.email}, or"
                           f" {check.hint('credentials_json', 'bucket')}")
    if code == 404:  # real GCS words it in JSON; the emulator sends an empty body
        where = f"on the emulator at {check.target}" if check.emulator else f"at {check.target}"
        hint = check.hint("bucket") + (f" (or start the emulator with --default-bucket={bucket})"
                                       if check.emulator and not missing else "")
        return CheckFailed(Reason.MISSING, missing or f"bucket {bucket} does not exist {where}",
                           hint)
    if code == 429:
        return CheckFailed(Reason.UNAVAILABLE, f"{what} was rate limited (HTTP 429)",
                           check.hint(key))
    return CheckFailed(Reason.UNEXPECTED, f"{what} at {check.target} answered HTTP {code}"
                       f" ({detail})", check.hint("bucket"))


def _not_http(exc: BaseException) -> bool:
    """A status line that is not HTTP (errors.classify calls the abort that follows a reset)."""
    from http.client import BadStatusLine, RemoteDisconnected

    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        e = todo.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, BadStatusLine) and not isinstance(e, RemoteDisconnected):
            return True
        todo += [x for x in (e.__cause__, e.__context__, *getattr(e, "args", ()))
                 if isinstance(x, BaseException)]
    return False


def _server_message(body: bytes) -> str | None:
    """`error.message` of a GCS JSON error body, else the body's text."""
    try:
        err = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return body.decode(errors="replace") or None
    return err.get("message") if isinstance(err, dict) else str(err) if err else None


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    try:
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    except ValueError:  # a port that is not a number
        return parts.netloc or url


def _short(text: object, limit: int = 160) -> str:
    return clip(text, limit)


CHECK = GcsCheck
