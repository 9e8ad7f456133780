"""Consul: the platform's service discovery.

Raw HTTP through HttpProbe, not py-consul: before 1.8 it has no timeout, its `agent.self()`
never sends the ACL token (403 on a deny-by-default cluster even with a good token), and the
old python-consul puts the token in `?token=`, where it leaks into logs and messages
(protocols.md §2). The token travels only in the `X-Consul-Token` header. Consul error
bodies are plain text and may carry an RPC prefix, so they are matched with "contains".

No CONSUL_TOKEN on a cluster with ACLs: a tokenless request runs as the agent's default
token if it has one, else as the anonymous token. `consul.token` looks up whichever applies
(the anonymous token by its well-known secret "anonymous", which is no credential) and names
it. That is a warning, not a failure, under default policy deny: the anonymous token is a
legitimate identity, and `consul.agent` / `consul.services` show exactly what it cannot do.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import quote

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, warn
from platctl.checks.http import HttpProbe
from platctl.result import Reason, Status
from platctl.secrets import clip

FILTERED = "X-Consul-Results-Filtered-By-ACLs"
TOKEN_SELF = "/v1/acl/token/self"
AGENT_SELF = "/v1/agent/self"


class ConsulCheck(ServiceCheck):
    service = "consul"
    env = {"url": "CONSUL_HOST / CONSUL_PORT / CONSUL_SCHEME", "token": "CONSUL_TOKEN"}

    who = "the token in CONSUL_TOKEN"  # refined by consul.token: description and accessor
    anonymous = False  # set by consul.token: no token configured, ACLs on, anonymous in use
    acl_policy = "unknown"  # the cluster's default ACL policy (X-Consul-Default-ACL-Policy)

    @cached_property
    def secret(self) -> str | None:
        return self.header_secret("token")

    @cached_property
    def probe(self) -> HttpProbe:
        headers = {"X-Consul-Token": self.secret} if self.secret else {}
        return HttpProbe(self.ctx, self.cfg.url.get_secret_value(), self.hint("url"), headers,
                         budget=self.budget)

    def prepare(self) -> None:
        self.probe  # builds the HTTP client (TLS context) outside the first step's timing

    def steps(self) -> Sequence[Step]:
        # One after the other, each reading what consul.leader asked early (one round trip
        # in all): agent's and services' messages name the token that consul.token described.
        return (Step("consul.leader", self.leader),
                Step("consul.token", self.token),
                Step("consul.agent", self.agent, gate=False),
                Step("consul.services", self.services, gate=False))

    def close(self) -> None:
        if "probe" in self.__dict__:
            self.probe.close()

    # -- steps ------------------------------------------------------------------------------
    def leader(self) -> str:
        what = "GET /v1/status/leader"
        self.ask_early(self._later(), self.probe.get)
        resp = self.probe.get("/v1/status/leader")  # needs no ACL
        if resp.status_code != 200:
            raise self._failure(resp, what)
        leader = self.probe.json(resp, what)
        if not isinstance(leader, str):
            raise CheckFailed(Reason.UNEXPECTED, f"{what} did not answer a JSON string: is the"
                              " URL pointing at Consul?", self.hint("url"))
        if not leader:  # Consul answers 200 "" while no leader is elected
            raise CheckFailed(Reason.UNAVAILABLE, f"no cluster leader elected (Consul at"
                              f" {self.probe.target}): the servers are starting or have lost"
                              " quorum", self.hint("url"))
        return f"cluster leader {leader} (Consul at {self.probe.target})"

    def token(self) -> str | Outcome:
        what = "GET /v1/acl/token/self"
        resp = self._get(TOKEN_SELF)
        if resp.status_code == 401 and "ACL support disabled" in resp.text:
            note = "token not needed" if self.secret else "no token needed"
            return f"ACLs are disabled on this cluster; {note}"
        if self.secret is None and resp.status_code == 403 and "ACL not found" in resp.text:
            return self._anonymous(resp)
        if resp.status_code != 200:
            raise self._failure(resp, what)
        label, grants = self._describe(self.probe.json(resp, what))
        if self.secret is None:  # the agent's acl.tokens.default answered for us
            self.who = f"the agent's default token {label}"
            return f"no CONSUL_TOKEN configured; requests run as {self.who} ({grants})"
        self.who = f"the token {label}"
        return f"token accepted: {label}, {grants}"

    def agent(self) -> str:
        what = "GET /v1/agent/self"
        resp = self._get(AGENT_SELF)
        if resp.status_code != 200:
            raise self._failure(resp, what, "agent:read")
        body = self.probe.json(resp, what)
        config = body.get("Config") if isinstance(body, dict) else None
        if not isinstance(config, dict) or "Version" not in config:
            raise CheckFailed(Reason.UNEXPECTED, f"{what} answered JSON without Config.Version:"
                              " is the URL pointing at Consul?", self.hint("url"))
        role = "server" if config.get("Server") else "client agent"
        return (f"Consul {config['Version']}, datacenter {config.get('Datacenter', '?')},"
                f" node {config.get('NodeName', '?')} ({role})")

    def services(self) -> str:
        wanted = list(dict.fromkeys(self.cfg.services))  # keep order, drop duplicates
        if not wanted:
            return "no services required by the profile (consul.services)"
        passing: list[str] = []
        missing: list[str] = []
        hidden: list[str] = []
        failing: list[str] = []
        for name in wanted:
            path = _health_path(name)
            nodes, filtered = self._health(path + "?passing", name)
            if nodes:
                passing.append(f"{name} ({len(nodes)} instance(s))")
                continue
            if not filtered:  # registered but not passing, or not registered at all?
                nodes, filtered = self._health(path, name)
            if nodes:
                statuses = sorted({str(c.get("Status")) for n in nodes if isinstance(n, dict)
                                   for c in n.get("Checks") or [] if isinstance(c, dict)
                                   and c.get("Status") != "passing"} or {"no checks"})
                failing.append(f"{name} ({len(nodes)} instance(s): {', '.join(statuses)})")
            elif filtered:
                hidden.append(name)
            else:
                missing.append(name)
        if not (missing or hidden or failing):
            return f"{len(wanted)} service(s) passing: {', '.join(passing)}"
        parts = []
        if missing:
            maybe = " (or hidden from the anonymous token: ACL filtering is silent for it)" \
                if self.anonymous and self.acl_policy != "allow" else ""
            parts.append(f"not registered in Consul{maybe}: {', '.join(missing)}")
        if hidden:
            parts.append(f"hidden by ACLs ({FILTERED}: true; {self.who} lacks service:read):"
                         f" {', '.join(hidden)}")
        if failing:
            parts.append(f"registered but no passing instance: {', '.join(failing)}")
        msg = "service(s) " + "; ".join(parts)
        if missing:
            also = f"; {self._grant_hint('service:read')}" if self.anonymous else ""
            raise CheckFailed(Reason.MISSING, msg, "register the services (start them with their"
                              " Consul agent), or check consul.services in the profile" + also)
        if hidden:
            raise CheckFailed(Reason.FORBIDDEN, msg, self._grant_hint("service:read"))
        raise CheckFailed(Reason.UNAVAILABLE, msg, "fix the services' failing health checks,"
                          " or check consul.services in the profile")

    # -- helpers ----------------------------------------------------------------------------
    def _later(self) -> list[str]:
        """The requests of the selected later steps that need no earlier answer."""
        paths = [p for cid, p in (("consul.token", TOKEN_SELF), ("consul.agent", AGENT_SELF))
                 if self.ctx.selected(cid)]
        if self.ctx.selected("consul.services"):
            paths += [_health_path(n) + "?passing" for n in dict.fromkeys(self.cfg.services)]
        return paths

    def _get(self, path: str) -> Any:
        """The answer to GET `path`: asked early by consul.leader, or now."""
        return self.answer(path, self.probe.get)

    def _anonymous(self, resp: Any) -> str | Outcome:
        """No token, ACLs on, no agent default token: requests run as the anonymous token."""
        self.anonymous, self.who = True, "the anonymous token (no CONSUL_TOKEN configured)"
        self.acl_policy = policy = resp.headers.get("X-Consul-Default-ACL-Policy", "unknown")
        looked = self.probe.get("/v1/acl/token/self", headers={"X-Consul-Token": "anonymous"})
        grants = ""
        if looked.status_code == 200:
            grants = " with " + _grants(self.probe.json(looked, "GET /v1/acl/token/self"))
        msg = (f"ACLs are enabled (default policy {policy}) and no CONSUL_TOKEN is configured:"
               f" requests run as the anonymous token{grants}")
        if policy == "allow":
            return Outcome(Status.PASS, msg)
        return warn(msg + "; later checks show what it may not read",
                    "set a Consul ACL token; " + self.hint("token"))

    def _describe(self, body: Any) -> tuple[str, str]:
        """("'description' (accessor ...)", "policies ..."): never the SecretID."""
        if not isinstance(body, dict) or "AccessorID" not in body:
            raise CheckFailed(Reason.UNEXPECTED, "GET /v1/acl/token/self answered JSON without"
                              " an AccessorID: is the URL pointing at Consul?", self.hint("url"))
        desc = self._clean(str(body.get("Description") or "")) or "without description"
        return f"'{desc}' (accessor {body['AccessorID']})", _grants(body)

    def _health(self, path: str, name: str) -> tuple[list[Any], bool]:
        what = f"GET /v1/health/service/{name}"
        resp = self._get(path)
        if resp.status_code != 200:
            raise self._failure(resp, what, "service:read")
        nodes = self.probe.json(resp, what)
        if not isinstance(nodes, list):
            raise CheckFailed(Reason.UNEXPECTED, f"{what} did not answer a JSON list: is the"
                              " URL pointing at Consul?", self.hint("url"))
        return nodes, resp.headers.get(FILTERED, "").lower() == "true"

    def _grant_hint(self, permission: str) -> str:
        if self.anonymous:
            return f"set a token with {permission} (or grant it to the anonymous token); " \
                + self.hint("token")
        return f"grant {permission} to the token's policy, or use another token; " \
            + self.hint("token")

    def _clean(self, text: str, limit: int = 200) -> str:
        """Server text fit for a message: one line, bounded, and never the secret."""
        if self.secret:
            text = text.replace(self.secret, "***")
        return clip(text, limit)

    def _failure(self, resp: Any, what: str, permission: str = "") -> CheckFailed:
        """Classify a non-success answer on (status, words of the plain-text body)."""
        status, text = resp.status_code, self._clean(resp.text)
        html = "html" in resp.headers.get("content-type", "") or text.startswith("<")
        if status >= 500 and "No known Consul servers" in text:
            return CheckFailed(Reason.UNAVAILABLE, f"the agent at {self.probe.target} cannot"
                               " reach any Consul server (No known Consul servers)",
                               self.hint("url"))
        if status >= 500 and "No cluster leader" in text:
            return CheckFailed(Reason.UNAVAILABLE, f"no cluster leader ({what} answered"
                               f" HTTP {status}: {text})", self.hint("url"))
        if status == 503:  # Consul's "retry later", or a proxy in front without an upstream
            return CheckFailed(Reason.UNAVAILABLE, f"{what} answered HTTP 503"
                               f" ({'an HTML page' if html else text}): Consul is unavailable",
                               self.hint("url"))
        if status >= 500:
            return CheckFailed(Reason.SERVER, f"{what} answered HTTP {status}"
                               f" ({'an HTML page' if html else text})", self.hint("url"))
        if html:
            return CheckFailed(Reason.UNEXPECTED, f"{what} answered HTTP {status} with an HTML"
                               " page, not Consul: is the URL pointing at a proxy or another"
                               " service?", self.hint("url"))
        if (status == 403 and "ACL not found" in text) or \
                (status == 404 and "Supplied token does not exist" in text):
            whose = "CONSUL_TOKEN" if self.secret else "the agent's default token"
            return CheckFailed(Reason.AUTH, f"{whose} is not a valid token ({text})",
                               self.hint("token"))
        if status == 403:
            need = f" lacks {permission}" if permission else " is not allowed"
            return CheckFailed(Reason.FORBIDDEN, f"{self.who}{need} ({what}: {text})",
                               self._grant_hint(permission or "the permission"))
        if status == 429:
            return CheckFailed(Reason.UNAVAILABLE, f"Consul rate-limited {what} (HTTP 429)",
                               self.hint("url"))
        body = text or "no body"
        return CheckFailed(Reason.UNEXPECTED, f"{what} answered HTTP {status} ({body}): is the"
                           " URL pointing at the Consul HTTP API?", self.hint("url"))


def _health_path(service: str) -> str:
    return f"/v1/health/service/{quote(service, safe='')}"


def _grants(body: Any) -> str:
    """'policies a, b; roles c' from a token: names only, they are no secret."""
    parts = []
    for key in ("Policies", "Roles"):
        items = body.get(key) if isinstance(body, dict) else None
        names = [str(p["Name"]) for p in items if isinstance(p, dict) and p.get("Name")] \
            if isinstance(items, list) else []
        if names:
            parts.append(f"{key.lower()} {', '.join(names)}")
    return "; ".join(parts) or "no policies or roles"


CHECK = ConsulCheck
