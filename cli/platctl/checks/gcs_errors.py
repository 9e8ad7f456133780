"""What a failed GCS call means: the token endpoint's answers, the JSON API's, the transport's.

Kept apart from checks/gcs.py (what is asked) because GCS fails in three layers with three
vocabularies: google-auth's RefreshError from the OAuth token endpoint, api_core's HTTP errors
from the JSON API, and requests/urllib3 transport errors from either. Messages never quote the
credentials or a parser's excerpt of them.
"""
from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from platctl.checks.base import CheckFailed
from platctl.checks.errors import TLS_HINT, classify, describe, mixup
from platctl.result import Reason
from platctl.secrets import clip

if TYPE_CHECKING:
    from platctl.checks.gcs import GcsCheck

# The token endpoint's invalid_grant descriptions (oauth2.googleapis.com), each its own cause.
BAD_SIGNATURE = "invalid jwt signature"
REVOKED = "expired or revoked"
CLOCK = ("reasonable timeframe", "iat and exp", "short-lived token")
NO_ACCOUNT = ("account not found", "not a valid email")
# google-auth retries a token answer carrying these (_client._can_retry), whatever its status
RETRYABLE_ERRORS = {"internal_failure", "server_error", "temporarily_unavailable"}
NEW_KEY = ("create a new key for {email} (IAM > Service accounts > Keys) and put the JSON in"
           " GCS_CREDENTIALS_JSON (profile: gcs.credentials_json)")


def one_attempt(session: Any, budget: Any, seen: dict[str, Any]) -> Any:
    """A token-endpoint transport that makes exactly one request within the step's budget.
    google-auth retries a 5xx/408/429, or a body naming a retryable error, itself with backoff
    (1 s, 2 s...) and no switch on the credentials; its default timeout is 120 s. So this gives
    up on those at once (RefreshError, retryable) and bounds every request by budget(). It also
    keeps the answer's Date header in `seen`: a clock-skew refusal then says by how much."""
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
            seen["date"], seen["at"] = resp.headers.get("date"), time.time()
            if resp.status in DEFAULT_RETRYABLE_STATUS_CODES or resp.status >= 500:
                raise ax.RefreshError(f"the token endpoint answered HTTP {resp.status}",
                                      retryable=True)
            body = _json_object(resp.data)
            if 200 <= resp.status < 300 and body is None:
                # google-auth would index a proxy's HTML page like a dict: TypeError, a "bug"
                raise ax.RefreshError(f"the token endpoint answered HTTP {resp.status} with"
                                      " something that is not OAuth JSON (an HTML page?)",
                                      retryable=True)
            said = {str((body or {}).get(k)) for k in ("error", "error_description")}
            if resp.status >= 300 and said & RETRYABLE_ERRORS:
                raise ax.RefreshError(f"the token endpoint answered HTTP {resp.status}"
                                      f" ({' '.join(sorted(said & RETRYABLE_ERRORS))})",
                                      retryable=True)
            return resp

    return OneAttempt(session)


def _json_object(data: Any) -> dict | None:
    try:
        body = json.loads(data)
    except (ValueError, TypeError):
        return None
    return body if isinstance(body, dict) else None


def refresh_failure(check: GcsCheck, exc: Any, seen: dict[str, Any]) -> CheckFailed:
    """The token endpoint answered and said no (google-auth's RefreshError)."""
    said = short(exc.args[0] if exc.args else exc)
    said = "an HTML page" if said.startswith("<") else said  # a proxy's page, not OAuth
    email, hint = check.email, check.hint("credentials_json")
    if getattr(exc, "retryable", False):
        return CheckFailed(Reason.SERVER, f"getting an OAuth token for {email} failed: {said}",
                           hint)
    data = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], dict) else {}
    error = str(data.get("error") or "")
    desc = str(data.get("error_description") or "").lower()
    new_key = NEW_KEY.format(email=email)
    if error == "invalid_grant" and BAD_SIGNATURE in desc:
        return CheckFailed(Reason.AUTH, f"the token endpoint rejects the signature made with the"
                           f" private key of {email} ({said}): the key is not a current key of"
                           " that service account (deleted or rotated, or another account's"
                           " key)", new_key)
    if error == "invalid_grant" and REVOKED in desc:
        return CheckFailed(Reason.AUTH, f"the credentials of {email} are revoked or expired"
                           f" ({said}): the key, or the service account, was disabled or"
                           " deleted", new_key)
    if error == "invalid_grant" and any(c in desc for c in CLOCK):
        return CheckFailed(Reason.AUTH, f"the token endpoint refuses the JWT's iat/exp: this"
                           f" host's clock is wrong{_skew(seen)} ({said})",
                           "synchronise this host's clock (NTP: `timedatectl status`,"
                           " `chronyc tracking`); the credentials themselves may be fine")
    if error == "invalid_grant" and any(c in desc for c in NO_ACCOUNT):
        return CheckFailed(Reason.AUTH, f"service account {email} does not exist ({said}):"
                           " deleted, or client_email was edited", new_key)
    if error == "invalid_scope":
        return CheckFailed(Reason.AUTH, f"the token endpoint refuses the requested scope for"
                           f" {email} ({said})", hint)
    return CheckFailed(Reason.AUTH, f"credentials rejected: the token endpoint refused {email}"
                       f" ({said}); the key may be deleted or disabled", hint)


def _skew(seen: dict[str, Any]) -> str:
    """' by about 7200 s (ahead of the token endpoint)' from the answer's Date header."""
    try:
        theirs = parsedate_to_datetime(seen["date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        return ""
    skew = seen["at"] - theirs
    if abs(skew) < 30:  # Date has whole seconds; small gaps say nothing
        return " or the token endpoint's (their clocks agree within 30 s)"
    side = "ahead of" if skew > 0 else "behind"
    return f" by about {abs(skew):.0f} s ({side} the token endpoint's Date header)"


def classify_call(check: GcsCheck, what: str, permission: str, exc: Exception,
                  missing: str | None) -> CheckFailed:
    """Any exception of one library call as a CheckFailed; re-raises what is our own bug."""
    from google.api_core import exceptions as gx
    from google.auth import exceptions as ax

    target = check.target
    key = check.endpoint_key
    if isinstance(exc, ax.RefreshError):
        return refresh_failure(check, exc, check.token_seen)
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
            target = host_port(check.info["token_uri"])
        hint = check.hint(key) if check.emulator or check.custom_endpoint and not token else \
            f"check that {target} is reachable (firewall, proxy, DNS)"
        msg = describe(reason, target, check.ctx.timeout, exc)
        if not token:  # the token endpoint is https by definition: no mix-up to name there
            msg += mixup(reason, check.api_endpoint.startswith("https:"), exc)
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
    detail = "an HTML page" if html else short(_server_message(body) or "no details")
    key, bucket, target = check.endpoint_key, check.cfg.bucket, check.target
    if code == 503:  # GCS's own "backendError", or a proxy in front without an upstream
        return CheckFailed(Reason.UNAVAILABLE, f"{what} at {target} answered HTTP 503"
                           f" ({detail}): the service is unavailable", check.hint(key))
    if code >= 500:
        return CheckFailed(Reason.SERVER, f"{what} at {target} failed with HTTP {code}"
                           f" ({detail})", check.hint(key))
    if html:  # a 404 page from a proxy or another web server is not "bucket missing"
        return CheckFailed(Reason.UNEXPECTED, f"{what} at {target} answered HTTP {code}"
                           " with an HTML page, not the GCS JSON API: is the endpoint right?",
                           check.hint(key))
    if code == 401 and check.emulator:
        return CheckFailed(Reason.AUTH, f"{target} answered 401 ({detail}): an emulator"
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
        where = f"on the emulator at {target}" if check.emulator else f"at {target}"
        hint = check.hint("bucket") + (f" (or start the emulator with --default-bucket={bucket})"
                                       if check.emulator and not missing else "")
        return CheckFailed(Reason.MISSING, missing or f"bucket {bucket} does not exist {where}",
                           hint)
    if code == 429:
        return CheckFailed(Reason.UNAVAILABLE, f"{what} was rate limited (HTTP 429)",
                           check.hint(key))
    return CheckFailed(Reason.UNEXPECTED, f"{what} at {target} answered HTTP {code}"
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


def host_port(url: str) -> str:
    parts = urlsplit(url)
    try:
        return f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    except ValueError:  # a port that is not a number
        return parts.netloc or url


def short(text: object, limit: int = 160) -> str:
    return clip(text, limit)
