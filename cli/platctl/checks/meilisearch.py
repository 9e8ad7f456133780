"""Meilisearch: the platform's full-text search.

The official client has no timeout and sends `Bearer None` when no key is set (protocols.md
§3), so every call is one bounded HttpProbe request. Verdicts are decided on the error body's
`code`, never on its message text (the messages change between releases).

An open server (no master key) passes with a warning rather than failing: the platform works
against it and local docker-compose setups often run that way, but anyone who can reach the
port can write or delete indexes. Meilisearch refuses to start without a master key in
`MEILI_ENV=production`, and the managed profile requires credentials by policy.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import quote

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, warn
from platctl.checks.http import HttpProbe, json_object
from platctl.result import Reason
from platctl.secrets import clip


class MeilisearchCheck(ServiceCheck):
    service = "meilisearch"
    env = {"url": "MEILISEARCH_URL", "api_key": "MEILI_MASTER_KEY"}

    @cached_property
    def probe(self) -> HttpProbe:
        return HttpProbe(self.ctx, self.cfg.url.get_secret_value(), self.hint("url"),
                         budget=self.budget)

    @cached_property
    def bearer(self) -> dict[str, str]:
        """The Authorization header, or none at all when no key is configured."""
        key = self.header_secret("api_key")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def prepare(self) -> None:
        self.probe  # builds the HTTP client (TLS context) outside the first step's timing

    def steps(self) -> Sequence[Step]:
        # One after the other, each reading what meilisearch.health asked early: one round
        # trip in all, where auth alone used to take two (without, then with the key).
        return (Step("meilisearch.health", self.health),
                Step("meilisearch.auth", self.auth),
                Step("meilisearch.indexes", self.indexes, gate=False))

    def close(self) -> None:
        if "probe" in self.__dict__:
            self.probe.close()

    # -- steps ------------------------------------------------------------------------------
    def health(self) -> str:
        self.ask_early(self._later(), self._ask)
        resp = self.probe.get("/health")  # public route: no key needed or sent
        if resp.status_code != 200:
            raise self._failure(resp, "GET /health")
        body = self.probe.json(resp, "GET /health")
        status = body.get("status") if isinstance(body, dict) else None
        if status == "available":
            return f"Meilisearch at {self.probe.target} is available"
        if status is None:
            raise CheckFailed(Reason.UNEXPECTED, f"GET /health at {self.probe.target} answered"
                              " JSON without a status: is the URL pointing at Meilisearch?",
                              self.hint("url"))
        raise CheckFailed(Reason.UNAVAILABLE, f"Meilisearch reports status {status!r}, not"
                          " 'available'", self.hint("url"))

    def auth(self) -> str | Outcome:
        # Ask without a key first: only a server without a master key answers 200, which is
        # worth a warning whether or not the profile has a key.
        resp = self._get("/version", keyed=False)
        if resp.status_code == 200:
            version = self._version(resp)
            return warn(f"Meilisearch {version} runs without a master key: anyone who can reach"
                        f" {self.probe.target} can read, write and delete indexes",
                        "start Meilisearch with MEILI_MASTER_KEY set (and put the key in"
                        " meilisearch.api_key)")
        if _code(resp) != "missing_authorization_header" or not self.bearer:
            raise self._failure(resp, "GET /version")
        resp = self._get("/version")
        if resp.status_code == 403 and _code(resp) == "invalid_api_key" and self._searches():
            # AUTH, not FORBIDDEN: the key configured is the wrong one, as for an unknown key
            raise CheckFailed(Reason.AUTH, "insufficient scope: the API key is valid but lacks"
                              " the 'version' action and may only search (a search key, such as"
                              " Meilisearch Cloud's Default Search API Key); the platform writes"
                              " documents and manages indexes, which needs an admin key",
                              "use the Default Admin API Key (or a key with actions [\"*\"]); "
                              + self.hint("api_key"))
        if resp.status_code != 200:
            raise self._failure(resp, "GET /version")
        return f"API key accepted by Meilisearch {self._version(resp)}"

    def indexes(self) -> str:
        wanted = list(dict.fromkeys(self.cfg.indexes))  # keep order, drop duplicates
        if not wanted:
            return "no indexes required by the profile (meilisearch.indexes)"
        missing: list[str] = []
        denied: list[str] = []
        for uid in wanted:
            what = f"GET /indexes/{uid}"
            resp = self._get(_index_path(uid))
            code = _code(resp)
            if resp.status_code == 200:
                self.probe.json(resp, what)  # an HTML 200 from a proxy is not an index
            elif resp.status_code == 404 and code == "index_not_found":
                missing.append(uid)
            elif resp.status_code == 403 and code == "invalid_api_key":
                denied.append(uid)  # the key passed meilisearch.auth: valid but not allowed
            elif code == "invalid_index_uid":
                raise CheckFailed(Reason.CONFIG, f"{uid!r} is not a valid index uid (only"
                                  " letters, digits, - and _)", self.hint("indexes"))
            else:
                raise self._failure(resp, what)
        if missing:
            also = f"; the API key may not access {_names(denied)}" if denied else ""
            raise CheckFailed(Reason.MISSING, f"index(es) missing: {_names(missing)}{also}",
                              "create them in Meilisearch, or check meilisearch.indexes in the"
                              " profile")
        if denied:
            raise CheckFailed(Reason.FORBIDDEN, f"the API key may not access index(es)"
                              f" {_names(denied)} (not in the key's indexes, or no"
                              " 'indexes.get' action)",
                              "give the key access to these indexes or use another key; "
                              + self.hint("api_key"))
        return f"{len(wanted)} index(es) present: {', '.join(wanted)}"

    # -- helpers ----------------------------------------------------------------------------
    def _later(self) -> list[tuple[str, bool]]:
        """The GETs of the selected later steps, asked while /health is asked: /version
        without and with the key (auth needs both), and every index."""
        later: list[tuple[str, bool]] = []
        try:
            usable, keyed = True, bool(self.bearer)
        except CheckFailed:  # a key no header can carry: meilisearch.auth says so itself
            usable = keyed = False
        if self.ctx.selected("meilisearch.auth"):
            later += [("/version", False)] + ([("/version", True)] if keyed else [])
        if usable and self.ctx.selected("meilisearch.indexes"):
            later += [(_index_path(uid), True) for uid in dict.fromkeys(self.cfg.indexes)]
        return later

    def _get(self, path: str, keyed: bool = True) -> Any:
        """GET `path`, with the key or without: the answer health asked early, or now."""
        return self.answer((path, keyed), self._ask)

    def _ask(self, request: tuple[str, bool]) -> Any:
        path, keyed = request
        return self.probe.get(path, headers=self.bearer if keyed else {})

    def _searches(self) -> bool:
        """Whether the key, refused /version, may search: an empty multi-search needs only the
        `search` action and touches no index, so 200 means "valid, search scope only" where
        403 invalid_api_key alone cannot tell an unknown key from a narrow one."""
        resp = self.probe.request("POST", "/multi-search", headers=self.bearer,
                                  json={"queries": []})
        return resp.status_code == 200

    def _version(self, resp: Any) -> str:
        body = self.probe.json(resp, "GET /version")
        version = body.get("pkgVersion") if isinstance(body, dict) else None
        if not isinstance(version, str):
            raise CheckFailed(Reason.UNEXPECTED, "GET /version answered JSON without"
                              " pkgVersion: is the URL pointing at Meilisearch?", self.hint("url"))
        return version

    def _failure(self, resp: Any, what: str) -> CheckFailed:
        """Classify a non-success answer: status first, then the Meilisearch error code."""
        status, code = resp.status_code, _code(resp)
        if status == 503:
            after = resp.headers.get("retry-after")
            detail = f": {_message(resp)}" if code else ""
            when = f"; it asks to retry after {after} s" if after else ""
            return CheckFailed(Reason.UNAVAILABLE, f"Meilisearch at {self.probe.target} is"
                               f" unavailable ({what} answered HTTP 503{detail}){when}",
                               self.hint("url"))
        if status >= 500:
            return self.probe.server_error(resp, what)
        if code == "missing_authorization_header":
            if not self.bearer:
                return CheckFailed(Reason.AUTH, "server requires an API key and none is"
                                   " configured", self.hint("api_key"))
            return CheckFailed(Reason.AUTH, "the server saw no bearer token although one was"
                               " sent (a proxy in front may strip Authorization)",
                               self.hint("url", "api_key"))
        if code == "invalid_api_key":
            return CheckFailed(Reason.AUTH, "the API key is invalid (unknown or expired) or"
                               " lacks the 'version' action", self.hint("api_key"))
        if code is None:
            self.probe.json(resp, what)  # raises UNEXPECTED naming an HTML/non-JSON body
            return CheckFailed(Reason.UNEXPECTED, f"{what} answered HTTP {status} without a"
                               " Meilisearch error: is the URL pointing at Meilisearch?",
                               self.hint("url"))
        return CheckFailed(Reason.UNEXPECTED, f"{what} answered HTTP {status} {code}:"
                           f" {_message(resp)}", self.hint("url"))


def _index_path(uid: str) -> str:
    return f"/indexes/{quote(uid, safe='')}"


def _code(resp: Any) -> str | None:
    code = json_object(resp).get("code")
    return code if isinstance(code, str) else None


def _message(resp: Any) -> str:
    return clip(json_object(resp).get("message", ""), 200)


def _names(uids: list[str]) -> str:
    return ", ".join(uids)


CHECK = MeilisearchCheck
