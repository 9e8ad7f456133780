"""What a failed GCS call means: the token endpoint's answers and the JSON API's.

Kept apart from checks/gcs.py (what is asked) because GCS says no in two vocabularies:
google-auth's RefreshError from the OAuth token endpoint, and the JSON API's HTTP statuses
with their error bodies (protocols.md §5; the emulator's 404 has an empty body). Transport
failures are HttpProbe's (checks/http.py). Messages never quote the credentials or a
parser's excerpt of them.
"""
from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from platctl.checks.base import CheckFailed
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


def http_failure(check: GcsCheck, what: str, permission: str, resp: Any,
                 missing: str | None) -> CheckFailed:
    """A JSON API answer that is not 2xx (an httpx response) as a CheckFailed."""
    code, ctype, body = resp.status_code, resp.headers.get("content-type", ""), resp.content
    html = "html" in ctype or body.lstrip()[:1] == b"<"
    detail = "an HTML page" if html else short(_server_message(body) or "no details")
    key, bucket, target = check.endpoint_key, check.cfg.bucket, check.target
    if code == 503:  # GCS's own "backendError", or a proxy in front without an upstream
        return CheckFailed(Reason.UNAVAILABLE, f"{what} at {target} answered HTTP 503"
                           f" ({detail}): the service is unavailable", check.hint(key))
    if code >= 500:
        return CheckFailed(Reason.SERVER, f"{what} at {target} failed with HTTP {code}"
                           f" ({detail})", check.hint(key))
    if code < 400:  # redirects are not followed: GCS itself never sends one to the JSON API
        return CheckFailed(Reason.UNEXPECTED, f"{what} at {target} answered HTTP {code} (a"
                           " redirect, not followed): is the endpoint the GCS JSON API?",
                           check.hint(key))
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
