"""The GCS JSON API as checks/gcs.py asks it: HttpProbe calls, each with the OAuth token.

Not google-cloud-storage: importing it (with requests and api_core) cost ~0.45 s of CPU per
run, and every call had to be talked out of its 60 s timeout and 120 s of retries
(protocols.md §5). HttpProbe makes one bounded attempt, follows no redirect, ignores the
environment (REQUESTS_CA_BUNDLE, proxies) and verifies TLS with the one CA setting.

A service account's token comes from google-auth (it signs the JWT grant) through
`one_attempt`, a transport over HttpProbe as well. The emulator gets no Authorization header
and nothing of google-auth is imported. The token is asked once per run (gcs.credentials asks
it early, see GcsCheck.check_credentials): every call waits for that one exchange, and a
refusal is the verdict of each step that needed the token.
"""
from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from platctl.checks.base import CheckFailed
from platctl.checks.gcs_errors import (RETRYABLE_ERRORS, host_port, http_failure,
                                       refresh_failure)
from platctl.checks.http import HttpProbe
from platctl.result import Reason
from platctl.secrets import remember

if TYPE_CHECKING:
    from platctl.checks.gcs import GcsCheck

# What storage.Client asked for: one scope the token endpoint grants for every object call.
SCOPE = "https://www.googleapis.com/auth/devstorage.full_control"


def bucket_path(bucket: str, tail: str = "", upload: bool = False) -> str:
    return f"{'/upload' if upload else ''}/storage/v1/b/{quote(bucket, safe='')}{tail}"


def object_path(bucket: str, name: str) -> str:
    return bucket_path(bucket, "/o/" + quote(name, safe=""))  # "/" in a name is %2F


class GcsApi:
    def __init__(self, check: GcsCheck) -> None:
        self.check = check
        self.token_seen: dict[str, Any] = {}  # the token endpoint's last Date header
        self._probes: dict[tuple[str, str], HttpProbe] = {}  # the API's, the token endpoint's
        self._probe_lock = threading.Lock()
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._refused: CheckFailed | None = None

    def call(self, method: str, path: str, what: str, permission: str,
             missing: str | None = None, headers: dict[str, str] | None = None,
             **kw: Any) -> Any:
        """One bounded request; an answer that is not 2xx becomes a CheckFailed."""
        check = self.check
        headers = dict(headers or {})
        token = self.token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            resp = self.probe().request(method, path, headers=headers, **kw)
        except CheckFailed as failed:
            if failed.reason is Reason.UNEXPECTED:  # an answer that is no HTTP at all
                raise CheckFailed(Reason.UNEXPECTED, f"{check.target} did not answer {what}"
                                  " with valid HTTP: is the endpoint the GCS JSON API?",
                                  check.hint(check.endpoint_key)) from None
            raise
        if not 200 <= resp.status_code < 300:
            raise http_failure(check, what, permission, resp, missing)
        return resp

    def probe(self) -> HttpProbe:
        """The API's client (the check's prepare() builds it: httpx's first costs ~75 ms)."""
        check = self.check
        hint = check.hint(check.endpoint_key) if check.emulator or check.custom_endpoint \
            else f"check that {check.target} is reachable (firewall, proxy, DNS)"
        return self._probe(check.api_endpoint, hint)

    def resource(self, resp: Any, what: str) -> dict[str, Any]:
        """The JSON object of a 2xx answer, or UNEXPECTED: a page from something else."""
        check = self.check
        try:
            body = json.loads(resp.content)
        except ValueError:
            body = None
            said = "something that is not JSON (an HTML page?)"
        else:
            said = "JSON that is not a GCS resource"
        if not isinstance(body, dict):
            raise CheckFailed(Reason.UNEXPECTED, f"{what} at {check.target} answered with {said}:"
                              " is the endpoint the GCS JSON API?", check.hint(check.endpoint_key))
        return body

    def token(self) -> str | None:
        """The access token for this run (asked once), or None on the emulator."""
        if self.check.emulator:
            return None
        with self._token_lock:
            if self._refused is not None:  # a step of the same wave already heard the no
                f = self._refused
                raise CheckFailed(f.reason, f.message, f.hint)
            if self._token is None:
                try:
                    self._token = self._refresh()
                except CheckFailed as failed:
                    self._refused = failed
                    raise
            return self._token

    def _refresh(self) -> str:
        from google.auth import exceptions as ax

        check = self.check
        creds = check.credentials
        try:
            creds.refresh(one_attempt(self._token_probe, check.budget, self.token_seen))
        except ax.RefreshError as exc:
            raise refresh_failure(check, exc, self.token_seen) from None
        except (ValueError, TypeError, KeyError) as exc:  # an answer google-auth cannot read
            raise CheckFailed(Reason.UNEXPECTED, f"the token endpoint's answer for {check.email}"
                              f" is not one google-auth can read ({type(exc).__name__}): is"
                              " the key's token_uri an OAuth token endpoint?",
                              check.hint("credentials_json")) from None
        if not isinstance(creds.token, str) or not creds.token:
            raise CheckFailed(Reason.UNEXPECTED, f"the token endpoint issued no access token for"
                              f" {check.email}", check.hint("credentials_json"))
        remember({creds.token})  # a server that echoes our request back cannot show it
        return creds.token

    def _token_probe(self, url: str) -> tuple[HttpProbe, str]:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        probe = self._probe(origin, f"check that {host_port(url)} is reachable (firewall,"
                            " proxy, DNS)")
        return probe, url[len(origin):]

    def _probe(self, base_url: str, hint: str) -> HttpProbe:
        with self._probe_lock:  # the steps of a wave share one client (and its CA load)
            if (base_url, hint) not in self._probes:
                self._probes[base_url, hint] = HttpProbe(self.check.ctx, base_url, hint,
                                                         budget=self.check.budget)
            return self._probes[base_url, hint]

    def close(self) -> None:
        for probe in self._probes.values():
            probe.close()


def one_attempt(probe_for: Any, budget: Any, seen: dict[str, Any]) -> Any:
    """A google-auth transport that makes exactly one request within the step's budget.
    google-auth retries a 5xx/408/429, or a body naming a retryable error, itself with backoff
    (1 s, 2 s...) and no switch on the credentials; its default timeout is 120 s. So this gives
    up on those at once (RefreshError, retryable) and bounds every request by budget(). It also
    keeps the answer's Date header in `seen`: a clock-skew refusal then says by how much."""
    import httpx
    from google.auth import exceptions as ax
    from google.auth import transport

    class Answer(transport.Response):  # what google-auth reads of an answer
        def __init__(self, resp: Any) -> None:
            self._resp = resp

        status = property(lambda self: self._resp.status_code)
        headers = property(lambda self: self._resp.headers)
        data = property(lambda self: self._resp.content)

    class OneAttempt(transport.Request):
        def __call__(self, url: str, method: str = "GET", body: Any = None,
                     headers: Any = None, timeout: Any = None, **kw: Any) -> Any:
            left = budget()
            probe, path = probe_for(url)
            try:
                resp = probe.request(method, path, content=body, headers=headers,
                                     timeout=httpx.Timeout(min(timeout or left, left)))
            except CheckFailed as failed:  # a transport failure, worded for its host:port
                raise CheckFailed(failed.reason, f"{failed.message} (getting an OAuth token)",
                                  failed.hint) from None
            seen["date"], seen["at"] = resp.headers.get("date"), time.time()
            status = resp.status_code
            if status in transport.DEFAULT_RETRYABLE_STATUS_CODES or status >= 500:
                raise ax.RefreshError(f"the token endpoint answered HTTP {status}",
                                      retryable=True)
            body = _json_object(resp.content)
            if 200 <= status < 300 and body is None:
                # google-auth would index a proxy's HTML page like a dict: TypeError, a "bug"
                raise ax.RefreshError(f"the token endpoint answered HTTP {status} with"
                                      " something that is not OAuth JSON (an HTML page?)",
                                      retryable=True)
            said = {str((body or {}).get(k)) for k in ("error", "error_description")}
            if status >= 300 and said & RETRYABLE_ERRORS:
                raise ax.RefreshError(f"the token endpoint answered HTTP {status}"
                                      f" ({' '.join(sorted(said & RETRYABLE_ERRORS))})",
                                      retryable=True)
            return Answer(resp)

    return OneAttempt()


def _json_object(data: Any) -> dict | None:
    try:
        body = json.loads(data)
    except (ValueError, TypeError):
        return None
    return body if isinstance(body, dict) else None
