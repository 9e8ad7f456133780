"""Consul HTTP API emulator (default port 8500), per protocols.md section 2.

Answers follow hashicorp/consul: the wrapper and error mapping in ``agent/http.go`` (``wrap``,
``handleErr``, ``Index``, ``parseTokenInternal``), ACL strings in ``acl/errors.go``, the
``ACLTokenSelf``/``aclDisabled`` handler in ``agent/acl_endpoint.go``, ``?passing`` filtering in
``agent/health_endpoint.go``. Only the read routes a pre-boot check touches exist:
``/v1/status/{leader,peers}``, ``/v1/agent/self``, ``/v1/acl/token/self``,
``/v1/health/service/{name}``, ``/v1/catalog/services`` and ``GET /v1/kv/{key}``.

Failure classes (exact recipes in the class docstring) plus the base faults
(``emu.fault = "hang" | "html" | "http500" | "slow" | "reset" | "garbage"``).
"""
from __future__ import annotations

import base64
import copy
import json
import re
from typing import Any

from .base import Emulator, Reply, Request

ANONYMOUS_ACCESSOR = "00000000-0000-0000-0000-000000000002"  # structs.ACLTokenAnonymousID
GOOD_TOKEN = "9a1c0f2e-5b7d-4c3a-8e6f-0d2b4a6c8e01"  # may read everything a check needs
LIMITED_TOKEN = "3f8e2d1c-7a6b-4e5d-9c0b-1a2f3e4d5c02"  # valid, but no agent/service/key read
TEXT = "text/plain; charset=utf-8"  # what Go sniffs for the fmt.Fprint error bodies
JSON = "application/json"  # wrap() sets exactly this, no charset
GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
TRUE = {"", "1", "t", "T", "true", "TRUE", "True"}  # strconv.ParseBool, plus bare ?passing
FALSE = {"0", "f", "F", "false", "FALSE", "False"}


class ConsulError(Exception):
    """An error a handler returns; wrap() turns it into a plain-text body (never JSON)."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def default_tokens() -> dict[str, dict[str, Any]]:
    # A capability left out (None) falls back to default_policy, as unmatched ACL rules do.
    return {
        GOOD_TOKEN: {"AccessorID": "e1a6b2c3-0d4e-4f5a-8b9c-aa11bb22cc01", "Description":
                     "platctl pre-boot check", "Policies": [{"ID": "5c2f3e1d-aaaa-4bbb-8ccc-"
                     "0123456789ab", "Name": "platctl-read"}], "agent_read": True,
                     "service_read": True, "key_read": True},
        LIMITED_TOKEN: {"AccessorID": "e1a6b2c3-0d4e-4f5a-8b9c-aa11bb22cc02", "Description":
                        "kv writer only", "Policies": [], "agent_read": False,
                        "service_read": False, "key_read": False},
    }


def default_services() -> dict[str, list[dict[str, Any]]]:
    # Instance keys (all optional): Node, Address, ID, Port, Tags, Checks (list of statuses).
    return {"consul": [{"Node": "consul-server-1", "Address": "10.0.0.10", "Port": 8300}],
            "redis": [{"Node": "cache-1", "Address": "10.0.0.21", "Port": 6379,
                       "Tags": ["primary"], "Checks": ["passing"]}]}


class ConsulEmulator(Emulator):
    """A Consul 1.20 server agent; every switch below is a plain attribute.

    - no leader          -> ``emu.leader = ""``: /v1/status/leader 200 ``""``; catalog, health,
                            kv and token reads 500 ``No cluster leader`` unless ``?stale``
    - no known servers   -> ``emu.no_known_servers = True`` (a client agent): every RPC-backed
                            route, /v1/status/* included, 500 ``No known Consul servers``
    - bad token          -> any secret not in ``emu.tokens`` (403 ``ACL not found``)
    - lacks agent:read   -> ``LIMITED_TOKEN``, or no token while ``default_policy="deny"``
                            (403 ``Permission denied: ... lacks permission 'agent:read'
                            on "<node>"``)
    - ACLs disabled      -> ``emu.acl_enabled = False``: no checks anywhere, /v1/acl/* 401
                            ``ACL support disabled``
    - service missing    -> a name not in ``emu.services`` (200 ``[]``)
    - not passing        -> ``emu.services["redis"][0]["Checks"] = ["critical"]`` (dropped by
                            ``?passing``); a token without service:read also gets 200 ``[]``
    Deviation: writes are out of scope, so any method but GET/OPTIONS answers 405 (real Consul
    accepts PUT/DELETE on /v1/kv/). The Server response header is the base class's.
    """

    name = "consul"

    def __init__(self, **config: Any) -> None:
        super().__init__()
        self._config = config
        self._configure(**copy.deepcopy(config))

    def _configure(self, *, leader: str = "10.0.0.10:8300", peers: list[str] | None = None,
                   no_known_servers: bool = False, acl_enabled: bool = True,
                   default_policy: str = "deny", tokens: dict[str, dict] | None = None,
                   default_token: str = "", anonymous: dict[str, Any] | None = None,
                   datacenter: str = "dc1", node_name: str = "consul-server-1",
                   version: str = "1.20.1", services: dict[str, list] | None = None,
                   kv: dict[str, bytes] | None = None, index: int = 128) -> None:
        self.leader = leader  # "" = no elected leader
        self.peers = [leader or "10.0.0.10:8300"] if peers is None else peers
        self.no_known_servers = no_known_servers
        self.acl_enabled = acl_enabled
        self.default_policy = default_policy  # "allow" | "deny"
        self.tokens = default_tokens() if tokens is None else tokens  # secret -> token info
        self.default_token = default_token  # acl.tokens.default, used when a request has none
        self.anonymous = {} if anonymous is None else anonymous  # the anonymous token's grants
        self.datacenter, self.node_name, self.version = datacenter, node_name, version
        self.services = default_services() if services is None else services
        self.kv = {"config/platctl/enabled": b"true"} if kv is None else kv
        self.index = index  # X-Consul-Index; a blocking query at >= this index waits
        self.last_contact_ms = 0

    def reset(self) -> None:
        super().reset()
        self._configure(**copy.deepcopy(self._config))

    # -- dispatch (agent/http.go wrap) --------------------------------------------------------
    def route(self, req: Request) -> Reply:
        handler = self._handler(req.path)
        if handler is None:
            # Index(): not wrapped, so no X-Consul-Default-ACL-Policy; Fprintln adds "\n".
            return Reply(404, b"Invalid URL path: not a recognized HTTP API endpoint\n"
                         if "/v1/" in req.path else b"Invalid URL path: if attempting to use the "
                         b"HTTP API, ensure the path starts with '/v1/'\n", TEXT)
        # wrap() sets the policy header first (even with ACLs off: Consul > 1.9); the gzip
        # handler adds Vary to every wrapped route.
        headers = {"Vary": "Accept-Encoding", "X-Consul-Default-ACL-Policy": self.default_policy}
        if req.method == "OPTIONS":
            return Reply(200, b"", None, {**headers, "Allow": "OPTIONS,GET"})
        try:
            if req.method != "GET":
                headers["Allow"] = "OPTIONS,GET"
                raise ConsulError(405, f"method {req.method} not allowed")
            status, obj = handler(req, headers)
        except ConsulError as err:
            return Reply(err.status, err.text.encode(), TEXT, headers)
        if obj is None:  # e.g. KV 404: WriteHeader without a body, so no Content-Type either
            return Reply(status, b"", None, headers)
        return Reply(status, json.dumps(obj, separators=(",", ":")).encode(), JSON, headers)

    def _handler(self, path: str):
        exact = {"/v1/status/leader": self._leader, "/v1/status/peers": self._peers,
                 "/v1/agent/self": self._agent_self, "/v1/catalog/services": self._catalog}
        if path in exact:
            return exact[path]
        if path.startswith("/v1/health/service/"):
            return lambda req, h: self._health(req, h, path[len("/v1/health/service/"):])
        if path.startswith("/v1/kv/"):
            return lambda req, h: self._kv(req, h, path[len("/v1/kv/"):])
        if path == "/v1/acl/token/self" or (path.startswith("/v1/acl/") and not self.acl_enabled):
            return self._token_self
        return None

    # -- shared steps -------------------------------------------------------------------------
    def _meta(self, headers: dict[str, str]) -> None:
        """setMeta(): catalog and token/self defer it (so their errors carry it too); health
        and kv call it only once the RPC succeeded. setIndex never sends 0."""
        headers.update({"X-Consul-Index": str(max(self.index, 1)), "X-Consul-KnownLeader":
                        "true" if self.leader else "false",
                        "X-Consul-LastContact": str(self.last_contact_ms)})

    def _rpc(self, req: Request, deferred_meta: dict[str, str] | None = None) -> None:
        """A read served by the servers: parse() (its 400s precede any meta), a deferred
        setMeta if the handler has one, the blocking wait, then forwarding to the leader."""
        q = req.query
        if "stale" in q and "consistent" in q:
            raise ConsulError(400, "Cannot specify ?stale with ?consistent, conflicting semantics.")
        block = self._block_seconds(q)
        if deferred_meta is not None:
            self._meta(deferred_meta)
        if block:
            self._stopping.wait(block)
        if self.no_known_servers:
            raise ConsulError(500, "No known Consul servers")  # structs.ErrNoServers
        if not self.leader and "stale" not in q:
            raise ConsulError(500, "No cluster leader")  # structs.ErrNoLeader

    def _block_seconds(self, q: dict[str, list[str]]) -> float:
        """Blocking query: ?index=N at or past the current index waits ?wait (default 5m)."""
        wait, idx = q.get("wait", [""])[0], q.get("index", [""])[0]
        if wait and wait != "0" and not re.fullmatch(f"(?:{GO_DURATION.pattern})+", wait):
            raise ConsulError(400, "Invalid wait time")  # time.ParseDuration failed
        if idx and not idx.isdigit():
            raise ConsulError(400, "Invalid index")
        if not idx or int(idx) < self.index:
            return 0.0
        seconds = sum(float(n) * UNITS[u] for n, u in GO_DURATION.findall(wait)) if wait else 300
        return min(seconds, 600.0)  # the server caps MaxQueryTime at 10m

    def _token(self, req: Request) -> str:
        """?token= > X-Consul-Token > Authorization: Bearer > acl.tokens.default."""
        if req.query.get("token", [""])[0]:
            return req.query["token"][0]
        if req.header("x-consul-token"):
            return req.header("x-consul-token")
        parts = (req.header("authorization") or "").split(" ")
        if len(parts) > 1 and parts[0].lower() == "bearer":
            return " ".join(parts[1:]).strip().split(" ")[0]
        return self.default_token

    def _authz(self, req: Request) -> dict[str, Any] | None:
        """The caller's grants (None = ACLs off). Unknown secrets are 403 ``ACL not found``."""
        if not self.acl_enabled:
            return None
        secret = self._token(req)
        if secret in ("", "anonymous"):
            return {**self.anonymous, "AccessorID": ANONYMOUS_ACCESSOR, "SecretID": "anonymous",
                    "Description": "Anonymous Token", "Policies": []}
        if secret not in self.tokens:
            raise ConsulError(403, "ACL not found")  # acl.ErrNotFound
        return {**self.tokens[secret], "SecretID": secret}

    def _allowed(self, authz: dict[str, Any] | None, grant: str) -> bool:
        if authz is None or authz.get("management"):
            return True
        value = authz.get(grant)
        return self.default_policy == "allow" if value is None else bool(value)

    @staticmethod
    def _denied(authz: dict[str, Any], permission: str, name: str) -> ConsulError:
        """acl.PermissionDeniedError.Error(); the resource name is quoted (ResourceDescriptor)."""
        if authz["AccessorID"] == ANONYMOUS_ACCESSOR:
            return ConsulError(403, f"Permission denied: anonymous token lacks permission "
                               f"'{permission}' on \"{name}\". The anonymous token is used "
                               "implicitly when a request does not specify a token.")
        return ConsulError(403, f"Permission denied: token with AccessorID "
                           f"'{authz['AccessorID']}' lacks permission '{permission}' on \"{name}\"")

    def _filtered(self, authz: dict[str, Any] | None, headers: dict[str, str]) -> None:
        # ACL-filtered results vanish silently; the header only shows for a named token.
        if authz is not None and authz["AccessorID"] != ANONYMOUS_ACCESSOR:
            headers["X-Consul-Results-Filtered-By-ACLs"] = "true"

    # -- endpoints ----------------------------------------------------------------------------
    def _leader(self, req: Request, headers: dict[str, str]) -> tuple[int, Any]:
        if self.no_known_servers:  # status routes need no ACL and no leader, only a server
            raise ConsulError(500, "No known Consul servers")
        return 200, self.leader  # no leader: 200 "" (status_endpoint.go: *reply = "")

    def _peers(self, req: Request, headers: dict[str, str]) -> tuple[int, Any]:
        if self.no_known_servers:
            raise ConsulError(500, "No known Consul servers")
        return 200, self.peers

    def _agent_self(self, req: Request, headers: dict[str, str]) -> tuple[int, Any]:
        authz = self._authz(req)  # answered by the local agent: no leader needed
        if not self._allowed(authz, "agent_read"):
            raise self._denied(authz, "agent:read", self.node_name)
        server, dc = not self.no_known_servers, self.datacenter
        return 200, {  # Config is the stable part (api-docs/agent/index.mdx)
            "Config": {"Datacenter": dc, "PrimaryDatacenter": dc, "NodeName": self.node_name,
                       "NodeID": "b2f0c8a4-6e1d-4c3b-9a5f-7d8e9f0a1b2c", "Revision": "e0d8f6ad",
                       "Server": server, "Version": self.version,
                       "BuildDate": "2025-01-03T12:00:00Z"},
            "DebugConfig": {"Datacenter": dc, "NodeName": self.node_name, "ServerMode": server},
            "Coord": {"Vec": [0] * 8, "Error": 1.5, "Adjustment": 0, "Height": 1e-05},
            "Member": {"Name": self.node_name, "Addr": "10.0.0.10", "Port": 8301, "Status": 1,
                       "Tags": {"dc": dc, "role": "consul" if server else "node"}},
            "Meta": {"consul-network-segment": "", "consul-version": self.version}}

    def _token_self(self, req: Request, headers: dict[str, str]) -> tuple[int, Any]:
        if not self.acl_enabled:  # checked before anything else (checkACLDisabled)
            raise ConsulError(401, "ACL support disabled")
        self._rpc(req, deferred_meta=headers)
        authz = self._authz(req)
        if self._token(req) == "":
            raise ConsulError(403, "ACL not found")  # no secret to look the token up by
        token = {k: authz[k] for k in ("AccessorID", "SecretID", "Description", "Policies")}
        token.update({k: authz[k] for k in ("Roles", "ServiceIdentities") if k in authz})
        return 200, {**token, "Local": False,
                     # Go time.Time: RFC 3339 with nanoseconds, so fractional seconds
                     "CreateTime": authz.get("CreateTime", "2025-02-11T09:14:07.294611832Z"),
                     "Hash": "UuiRkOQPRCvoRZHRtUxxbrmwZ5crYrOdZ0Z1FTFbTbA=",
                     "CreateIndex": 59, "ModifyIndex": 59}

    def _catalog(self, req: Request, headers: dict[str, str]) -> tuple[int, Any]:
        self._rpc(req, deferred_meta=headers)
        authz = self._authz(req)
        headers["X-Consul-Effective-Consistency"] = self._consistency(req)
        if not self._allowed(authz, "service_read"):
            self._filtered(authz, headers)
            return 200, {}
        return 200, {name: sorted({t for i in insts for t in i.get("Tags", [])})
                     for name, insts in self.services.items()}

    def _health(self, req: Request, headers: dict[str, str], name: str) -> tuple[int, Any]:
        if not name:
            raise ConsulError(400, "Missing service name")
        self._rpc(req)
        authz = self._authz(req)
        self._meta(headers)
        headers["X-Consul-Effective-Consistency"] = self._consistency(req)
        nodes = [self._check_service_node(name, i) for i in self.services.get(name, [])]
        if nodes and not self._allowed(authz, "service_read"):
            self._filtered(authz, headers)
            nodes = []
        passing = req.query.get("passing", [None])[0]  # getBoolQueryParam: bare = true
        if passing is not None and passing not in TRUE | FALSE:
            raise ConsulError(400, "Invalid value for ?passing")
        if passing in TRUE:  # filterNonPassing: any non-passing check (warning too) drops it
            nodes = [n for n in nodes if all(c["Status"] == "passing" for c in n["Checks"])]
        return 200, nodes

    def _kv(self, req: Request, headers: dict[str, str], key: str) -> tuple[int, Any]:
        if not key and "recurse" not in req.query and "keys" not in req.query:
            raise ConsulError(400, "Missing key name")
        self._rpc(req)
        authz = self._authz(req)
        if not self._allowed(authz, "key_read"):
            raise self._denied(authz, "key:read", key)
        self._meta(headers)
        if key not in self.kv:
            return 404, None  # 404 with an empty body, but with the X-Consul-* headers
        value = self.kv[key]
        return 200, [{"LockIndex": 0, "Key": key, "Flags": 0, "Value":
                      base64.b64encode(value).decode() if value else None,
                      "CreateIndex": self.index - 8, "ModifyIndex": self.index}]

    @staticmethod
    def _consistency(req: Request) -> str:
        return "stale" if "stale" in req.query else \
            "consistent" if "consistent" in req.query else "leader"

    def _check_service_node(self, name: str, inst: dict[str, Any]) -> dict[str, Any]:
        node, addr = inst.get("Node", "node-1"), inst.get("Address", "10.0.0.20")
        sid, tags = inst.get("ID", name), inst.get("Tags", [])
        idx = {"CreateIndex": 12, "ModifyIndex": 12}
        checks = [{"Node": node, "CheckID": "serfHealth", "Name": "Serf Health Status",
                   "Status": "passing", "Notes": "", "Output": "Agent alive and reachable",
                   "ServiceID": "", "ServiceName": "", "ServiceTags": [], "Type": "", **idx}]
        for n, status in enumerate(inst.get("Checks", [])):
            checks.append({"Node": node, "CheckID": f"service:{sid}" + (f":{n + 1}" if n else ""),
                           "Name": f"Service '{name}' check", "Status": status, "Notes": "",
                           "Output": "", "ServiceID": sid, "ServiceName": name,
                           "ServiceTags": tags, "Type": "tcp", **idx})
        return {"Node": {"ID": "", "Node": node, "Address": addr, "Datacenter": self.datacenter,
                         "TaggedAddresses": {"lan": addr, "wan": addr}, "Meta": {}, **idx},
                "Service": {"ID": sid, "Service": name, "Tags": tags, "Address": addr,
                            "Meta": {}, "Port": inst.get("Port", 0),
                            "Weights": {"Passing": 1, "Warning": 1},
                            "EnableTagOverride": False, **idx},
                "Checks": checks}
