"""One bounded HTTP attempt for the HTTP services (Arango, Consul, Meilisearch, Supabase,
OTLP): explicit connect/read timeouts, no retries, no redirects, TLS from the one CA setting,
and transport failures classified. Official clients are not used for these services because
their defaults hang or retry (protocols.md, "five facts"); the test suite proves the
emulators with the official clients instead.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from platctl.checks.base import CheckContext, CheckFailed
from platctl.checks.errors import TLS_HINT, classify, describe, mixup
from platctl.result import Reason
from platctl.secrets import clip


class HttpProbe:
    def __init__(self, ctx: CheckContext, base_url: str, hint: str,
                 headers: dict[str, str] | None = None,
                 budget: Callable[[], float] | None = None) -> None:
        import httpx  # imported here so `platctl --help` stays fast

        self.ctx, self.hint, self._httpx = ctx, hint, httpx
        self.budget = budget or (lambda: ctx.timeout)  # the check's time left for this step
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(base_url)
        self.tls = parts.scheme == "https"
        self.target = f"{parts.hostname}:{parts.port or (443 if self.tls else 80)}"
        verify: Any = ctx.ssl_context() if parts.scheme == "https" else False
        auth = (parts.username or "", parts.password or "") if parts.username else None
        if parts.username:  # credentials inside the URL travel as a header, never in the URL
            self.base_url = self.base_url.replace(parts.netloc, parts.netloc.rpartition("@")[2], 1)
        self._client = httpx.Client(timeout=httpx.Timeout(ctx.timeout), verify=verify,
                                    follow_redirects=False, headers=headers or {}, auth=auth,
                                    trust_env=False)

    def request(self, method: str, path: str, **kw: Any):
        try:
            kw.setdefault("timeout", self._httpx.Timeout(self.budget()))
            return self._client.request(method, self.base_url + path, **kw)
        except Exception as exc:  # noqa: BLE001 - every transport error is classified here
            reason = classify(exc) or Reason.UNEXPECTED
            if reason is Reason.UNEXPECTED:
                msg = f"{self.target} did not answer with valid HTTP ({type(exc).__name__})"
            else:
                msg = describe(reason, self.target, self.ctx.timeout, exc) \
                    + mixup(reason, self.tls, exc)
            hint = f"{TLS_HINT}; {self.hint}" if reason is Reason.TLS else self.hint
            raise CheckFailed(reason, msg, hint) from None

    def get(self, path: str, **kw: Any):
        return self.request("GET", path, **kw)

    def json(self, resp: Any, what: str) -> Any:
        """The JSON body of `resp`, or an 'unexpected answer' failure that says what came."""
        ctype = resp.headers.get("content-type", "")
        try:
            return json.loads(resp.content)
        except ValueError:
            kind = "an HTML page" if "html" in ctype or resp.content.lstrip()[:1] == b"<" \
                else f"non-JSON ({ctype or 'no content type'})"
            raise CheckFailed(Reason.UNEXPECTED,
                              f"{what} answered HTTP {resp.status_code} with {kind}, not the"
                              f" service's JSON: is the URL pointing at a proxy or another"
                              f" service?", self.hint) from None

    def server_error(self, resp: Any, what: str) -> CheckFailed:
        return CheckFailed(Reason.SERVER, f"{what} answered HTTP {resp.status_code}"
                           f" ({_short(resp.text)})", self.hint)

    def close(self) -> None:
        self._client.close()


def json_object(resp: Any) -> dict[str, Any]:
    """The body as a JSON object, or {} when it is not one (error bodies are best effort)."""
    try:
        body = json.loads(resp.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _short(text: str, limit: int = 120) -> str:
    if text.lstrip().startswith("<"):
        return "an HTML page"
    return clip(text, limit)
