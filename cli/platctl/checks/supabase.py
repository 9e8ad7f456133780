"""Supabase: the platform's registry, auth, tenancy and file metadata.

One bounded HttpProbe request per step through the API gateway (Kong self-hosted, the platform
when hosted): supabase-py's PostgREST client waits 120 s, retries GETs and truncates timeouts to
whole seconds (protocols.md §4). Keys travel in `apikey`; only legacy JWT keys also go in
`Authorization: Bearer`, because an opaque sb_ key there reaches PostgREST as a malformed JWT
(the gateway mints the role JWT from the apikey itself).

`supabase.keys` reads both keys locally, decoding the JWT payload without verifying it (the
project's JWT secret is not ours to have), so swapped keys, an anon key as the service key or an
expired key are named before any request. REST, GoTrue and Storage are then probed independently
(supabase.rest asks the other two early: one round trip for the three), but they sit behind one
gateway: a transport failure (refused, timed out, ...) is reported by the first step that meets
it and repeated by the next ones, so a hung gateway costs one timeout instead of three.
"""
from __future__ import annotations

import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, warn
from platctl.checks.http import HttpProbe, json_object
from platctl.checks.supabase_keys import KeyInfo, day, inspect_key, jwt_why
from platctl.result import Reason
from platctl.secrets import clip

WANTED = {"service_key": "service_role", "anon_key": "anon"}
EXPIRY_WARN_DAYS = 30
# What supabase.rest asks early for the steps after it: (check id, path, key it sends).
LATER = (("supabase.auth", "/auth/v1/health", "anon_key"),
         ("supabase.storage", "/storage/v1/bucket", "service_key"))
# Failures of the connection itself: the same for every request to the gateway.
TRANSPORT = {Reason.REFUSED, Reason.TIMEOUT, Reason.DNS, Reason.TLS, Reason.RESET,
             Reason.UNEXPECTED}


class SupabaseCheck(ServiceCheck):
    service = "supabase"
    env = {"url": "SUPABASE_URL", "service_key": "SUPABASE_SERVICE_KEY",
           "anon_key": "SUPABASE_ANON_KEY"}

    _down: tuple[CheckFailed, str] | None = None  # first transport failure and its step

    @cached_property
    def probe(self) -> HttpProbe:
        return HttpProbe(self.ctx, self.cfg.url.get_secret_value(), self.hint("url"),
                         budget=self.budget)

    def prepare(self) -> None:
        self.probe  # builds the HTTP client (TLS context) outside the first step's timing

    def steps(self) -> Sequence[Step]:
        return (Step("supabase.keys", self.keys),
                Step("supabase.rest", self.rest, gate=False),
                Step("supabase.auth", self.auth, gate=False),
                Step("supabase.storage", self.storage, gate=False))

    def close(self) -> None:
        if "probe" in self.__dict__:
            self.probe.close()

    # -- steps ------------------------------------------------------------------------------
    def keys(self) -> str | Outcome:
        missing = [f for f in WANTED if self._raw(f) is None]
        if missing:
            raise CheckFailed(Reason.CONFIG, f"{' and '.join(self.env[f] for f in missing)}"
                              f" {'is' if len(missing) == 1 else 'are'} not set: the platform"
                              " needs the service key and the anon key", self.hint(*missing))
        infos = {f: self._inspect(f) for f in WANTED}
        svc, anon = infos["service_key"], infos["anon_key"]
        if svc.role == "anon" and anon.role == "service_role":
            raise CheckFailed(Reason.CONFIG, "the keys are swapped: SUPABASE_SERVICE_KEY holds the"
                              " anon key and SUPABASE_ANON_KEY the service key",
                              "exchange the two; " + self.hint("service_key", "anon_key"))
        if svc.role != "service_role":
            raise CheckFailed(Reason.CONFIG, f"SUPABASE_SERVICE_KEY holds {svc.what()}, not the"
                              " service key (sb_secret_ or the legacy service_role JWT)",
                              self.hint("service_key"))
        if anon.role != "anon":
            leak = (": the anon key is handed to browsers, so this would give them full database"
                    " access" if anon.role == "service_role" else "")
            raise CheckFailed(Reason.CONFIG, f"SUPABASE_ANON_KEY holds {anon.what()}, not the anon"
                              f" key (sb_publishable_ or the legacy anon JWT){leak}",
                              self.hint("anon_key"))
        self._check_refs(infos)
        now = time.time()
        expired = [f for f, i in infos.items() if i.exp and i.exp <= now]
        if expired:
            raise CheckFailed(Reason.AUTH, "; ".join(
                f"{self.env[f]} expired on {day(infos[f].exp)}" for f in expired),
                "issue new API keys in the Supabase project; " + self.hint(*expired))
        text = "; ".join(f"{self.env[f]}: {i.describe()}" for f, i in infos.items())
        soon = [f for f, i in infos.items() if i.exp and i.exp - now < EXPIRY_WARN_DAYS * 86400]
        if soon:
            return warn("; ".join(f"{self.env[f]} expires on {day(infos[f].exp)} (in"
                                  f" {(infos[f].exp - now) / 86400:.0f} days)" for f in soon)
                        + f". {text}",
                        "issue new API keys before they expire; " + self.hint(*soon))
        return text

    def rest(self) -> str:
        what = "GET /rest/v1/"
        self.ask_early([(path, name) for cid, path, name in LATER if self.ctx.selected(cid)],
                       self._fetch)
        resp = self._get("/rest/v1/", "service_key", "supabase.rest")
        if resp.status_code == 404 and json_object(resp).get("code") == "PGRST126":
            return "PostgREST accepts the service key (its OpenAPI root is disabled: PGRST126)"
        if resp.status_code != 200:
            raise self._failure(resp, what, "PostgREST", "service_key")
        doc = self.probe.json(resp, what)
        if not isinstance(doc, dict) or not ("swagger" in doc or "openapi" in doc):
            raise CheckFailed(Reason.UNEXPECTED, f"{what} answered JSON that is not PostgREST's"
                              " OpenAPI document: is SUPABASE_URL the project's API URL?",
                              self.hint("url"))
        info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
        paths = doc.get("paths") if isinstance(doc.get("paths"), dict) else {}
        version = f" {info['version']}" if isinstance(info.get("version"), str) else ""
        return (f"PostgREST{version} answers with the service key"
                f" ({len([p for p in paths if p != '/'])} table(s)/view(s) exposed)")

    def auth(self) -> str:
        what = "GET /auth/v1/health"
        resp = self._get("/auth/v1/health", "anon_key", "supabase.auth")
        if resp.status_code != 200:
            raise self._failure(resp, what, "GoTrue", "anon_key")
        body = self.probe.json(resp, what)
        if not isinstance(body, dict) or "version" not in body:
            raise CheckFailed(Reason.UNEXPECTED, f"{what} answered JSON without a version: is"
                              " SUPABASE_URL the project's API URL?", self.hint("url"))
        name, version = str(body.get("name") or "GoTrue")[:40], str(body["version"])[:40]
        return f"{name} {version} healthy; the gateway accepts the anon key"

    def storage(self) -> str:
        what = "GET /storage/v1/bucket"
        resp = self._get("/storage/v1/bucket", "service_key", "supabase.storage")
        if resp.status_code != 200:
            raise self._storage_failure(resp, what)
        body = self.probe.json(resp, what)
        if not isinstance(body, list):
            raise CheckFailed(Reason.UNEXPECTED, f"{what} answered JSON that is not a bucket list:"
                              " is SUPABASE_URL the project's API URL?", self.hint("url"))
        ids = {str(b.get("id") or b.get("name")) for b in body if isinstance(b, dict)}
        wanted = list(dict.fromkeys(self.cfg.buckets))
        missing = [b for b in wanted if b not in ids]
        if missing:
            raise CheckFailed(Reason.MISSING, f"bucket(s) missing: {', '.join(missing)} (Storage"
                              f" lists {len(ids)} bucket(s) for the service key)",
                              "create them in Supabase Storage, or check supabase.buckets in the"
                              " profile")
        if not wanted:
            return f"Storage lists {len(ids)} bucket(s) (none required by supabase.buckets)"
        return f"Storage lists {len(ids)} bucket(s); required present: {', '.join(wanted)}"

    # -- helpers ----------------------------------------------------------------------------
    def _raw(self, name: str) -> str | None:
        secret = getattr(self.cfg, name)
        key = secret.get_secret_value().strip() if secret is not None else ""
        return key or None  # a pasted newline is not part of the key

    def _inspect(self, name: str) -> KeyInfo:
        info = inspect_key(self._raw(name) or "")
        if info is None:
            raise CheckFailed(Reason.CONFIG, f"{self.env[name]} is not a Supabase API key (neither"
                              " a JWT nor an sb_secret_/sb_publishable_ key)", self.hint(name))
        if info.role is None:
            raise CheckFailed(Reason.CONFIG, f"{self.env[name]} is a JWT without a role claim,"
                              " not a Supabase API key", self.hint(name))
        return info

    def _check_refs(self, infos: dict[str, KeyInfo]) -> None:
        """Hosted keys carry their project ref: they must agree with each other and the URL."""
        refs = {f: i.claims["ref"] for f, i in infos.items()
                if isinstance(i.claims.get("ref"), str)}
        if len(set(refs.values())) > 1:
            raise CheckFailed(Reason.CONFIG, "the keys belong to different projects ("
                              + ", ".join(f"{self.env[f]} ref {r}" for f, r in refs.items()) + ")",
                              self.hint(*refs))
        host = urlsplit(self.cfg.url.get_secret_value()).hostname or ""
        url_ref = host.split(".")[0] if host.endswith(".supabase.co") else None
        wrong = [f for f, r in refs.items() if url_ref and r != url_ref]
        if wrong:
            raise CheckFailed(Reason.CONFIG, f"the keys belong to project {refs[wrong[0]]} but"
                              f" SUPABASE_URL points at project {url_ref}",
                              self.hint("url", *wrong))

    def _opaque(self, name: str) -> bool:
        return (self._raw(name) or "").startswith("sb_")

    def _headers(self, name: str) -> dict[str, str]:
        key = self.header_secret(name)
        if key is None:
            raise CheckFailed(Reason.CONFIG, f"{self.env[name]} is not set", self.hint(name))
        info = inspect_key(key)
        if info is not None and info.kind == "jwt":
            return {"apikey": key, "Authorization": f"Bearer {key}"}
        return {"apikey": key}  # sb_ keys must never travel as Bearer (protocols.md §4)

    def _get(self, path: str, name: str, step: str) -> Any:
        if self._down is not None:
            failed, where = self._down
            raise CheckFailed(failed.reason, f"{failed.message} (as in {where}: the same"
                              " gateway)", failed.hint)
        try:
            return self.answer((path, name), self._fetch)
        except CheckFailed as failed:
            if failed.reason in TRANSPORT:
                self._down = (failed, step)
            raise

    def _fetch(self, request: tuple[str, str]) -> Any:
        path, name = request  # the path, and the profile field of the key it sends
        return self.probe.get(path, headers=self._headers(name))

    def _failure(self, resp: Any, what: str, component: str, name: str) -> CheckFailed:
        """Classify a non-success answer from the gateway or the service behind it."""
        status, body = resp.status_code, json_object(resp)
        code, message = str(body.get("code") or ""), _message(body)
        env, detail = self.env[name], f" ({message})" if message else ""
        if status == 502:
            return CheckFailed(Reason.SERVER, f"{component} behind the gateway is down: {what}"
                               f" answered HTTP 502{detail}", self.hint("url"))
        if status == 503 or code in ("PGRST000", "PGRST001", "PGRST002"):
            return CheckFailed(Reason.UNAVAILABLE, f"{component} is up but not ready: {what}"
                               f" answered HTTP {status} {code}{detail}", self.hint("url"))
        if status >= 500:
            return self.probe.server_error(resp, what)
        if not message:
            self.probe.json(resp, what)  # raises UNEXPECTED naming an HTML/non-JSON body
            return CheckFailed(Reason.UNEXPECTED, f"{what} answered HTTP {status} without a"
                               " Supabase error: is SUPABASE_URL the project's API URL?",
                               self.hint("url"))
        if message.startswith("No API key found"):
            return CheckFailed(Reason.AUTH, f"the gateway found no API key in {what} although"
                               f" {env} was sent: a proxy in front may strip the apikey header",
                               self.hint("url", name))
        if message in ("Invalid API key", "Invalid authentication credentials"):
            return CheckFailed(Reason.AUTH, f"the gateway rejects {env} ({message}): it is not a"
                               " key of this project (another project's key, or revoked)",
                               self.hint(name))
        if message.startswith("Access to schema is forbidden"):
            return CheckFailed(Reason.FORBIDDEN, f"{env} is an anon/publishable key, not the"
                               f" service key: {message} (the Data API serves the schema only to"
                               " a secret key)", self.hint(name))
        if code.startswith("PGRST30"):
            why = jwt_why(message, self._opaque(name))
            return CheckFailed(Reason.AUTH, f"{component} rejects the JWT of {env} ({code}:"
                               f" {message}){why}", self.hint(name))
        if status in (401, 403):
            return CheckFailed(Reason.AUTH, f"{what} answered HTTP {status}{detail}",
                               self.hint(name))
        if "no Route matched" in message:
            return CheckFailed(Reason.UNEXPECTED, f"the gateway has no route for {what}: is"
                               " SUPABASE_URL the project's API URL (the gateway, not a service"
                               " behind it)?", self.hint("url"))
        return CheckFailed(Reason.UNEXPECTED, f"{what} answered HTTP {status} {code}{detail}",
                           self.hint("url"))

    def _storage_failure(self, resp: Any, what: str) -> CheckFailed:
        # Storage answers HTTP 400 for every error but a 500; the real status is the body's
        # statusCode, a string (protocols.md §4).
        body = json_object(resp)
        real, message = str(body.get("statusCode", "")), _message(body)
        if resp.status_code == 400 and real in ("401", "403"):
            return CheckFailed(Reason.AUTH, f"Storage rejects the JWT of SUPABASE_SERVICE_KEY:"
                               f" {message}{jwt_why(message, self._opaque('service_key'))}",
                               self.hint("service_key"))
        if resp.status_code == 400 and real == "404":
            return CheckFailed(Reason.MISSING, f"Storage answered {body.get('code') or real}:"
                               f" {message}", "check supabase.buckets in the profile")
        if resp.status_code == 400 and real:
            return CheckFailed(Reason.UNEXPECTED, f"Storage answered {what} with status {real}"
                               f" {body.get('code') or ''}: {message}", self.hint("url"))
        return self._failure(resp, what, "Storage", "service_key")


def _message(body: dict[str, Any]) -> str:
    for k in ("message", "msg", "error"):
        if isinstance(body.get(k), str) and body[k]:
            return clip(body[k], 200)
    return ""


CHECK = SupabaseCheck
