"""Google Cloud Storage: the platform's blob bytes.

The JSON API is asked directly (checks/gcs_api.py: HttpProbe, one bounded attempt per call),
not through google-cloud-storage (~0.45 s of imports, 60 s timeouts and 120 s of retries by
default, protocols.md §5). The endpoint comes from the profile only: the emulator's, else
gcs.endpoint, storage.googleapis.com by default; never STORAGE_EMULATOR_HOST or
API_ENDPOINT_OVERRIDE from the process environment, which is not the profile. gcs.endpoint is
a real GCS API at another URL (Private Service Connect, a restricted endpoint): real
credentials, never the emulator's anonymous ones. Failures are worded in checks/gcs_errors.py.

The bucket, the permissions and the canary's upload are one wave (worker.waves): the
permission and canary answers count only when the bucket passed, and asking them is harmless
when it did not (an upload into a missing bucket creates nothing). The canary then reads back
what it wrote; close() deletes it after every verdict (two round trips, not four).

--read-only skips the canary but still asks testIamPermissions for create/get/delete: asking
writes nothing, and the platform needs all three whatever flags platctl runs with.
"""
from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, skip, warn
from platctl.checks.gcs_api import SCOPE, GcsApi, bucket_path, object_path
from platctl.checks.gcs_credentials import service_account_info
from platctl.checks.gcs_errors import host_port, short
from platctl.result import Reason

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
PERMISSIONS = ("storage.objects.create", "storage.objects.get", "storage.objects.delete")
CANARY_PREFIX = "platctl-canary/"
# GCS has no TTL. A canary's name starts with the time after which it is an orphan (the run
# that wrote it is over: killed mid-canary, or its upload landed after it gave up), and
# every run that may write deletes the expired ones it finds in close(): the names, not the
# age, say what is dead, so a concurrent run's live canary is never touched. The margin
# beyond the writing run's worst case (4 bounded calls) covers clock skew between hosts.
ORPHAN_MARGIN = 600
SWEEP_MAX = 20  # names sort by expiry: the most expired come first
_EXPIRES = re.compile(re.escape(CANARY_PREFIX) + r"(\d{10})-")


class GcsCheck(ServiceCheck):
    service = "gcs"
    env = {"project_id": "GCS_PROJECT_ID", "bucket": "GCS_BUCKET_NAME",
           "credentials_json": "GCS_CREDENTIALS_JSON", "emulator_host": "STORAGE_EMULATOR_HOST",
           "endpoint": "GCS_ENDPOINT"}

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        self._pending: str | None = None  # a canary's name: may exist, not deleted yet
        self._may_sweep = False  # the canary went through: this run may write and delete
        self.api = GcsApi(self)  # before any step: the steps of a wave share its token

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
    def api_endpoint(self) -> str:
        """Where the JSON API is asked: the emulator, else gcs.endpoint (validated by the model)."""
        return self.emulator or self.cfg.endpoint.get_secret_value().rstrip("/")

    @property
    def custom_endpoint(self) -> bool:
        return not self.emulator and self.api_endpoint != DEFAULT_ENDPOINT

    @property
    def endpoint_key(self) -> str:
        """The profile field naming where requests go, for hints about a wrong answer."""
        return "emulator_host" if self.emulator else "endpoint" if self.custom_endpoint \
            else "credentials_json"

    @cached_property
    def target(self) -> str:
        return host_port(self.api_endpoint)

    @cached_property
    def info(self) -> dict[str, Any]:
        return service_account_info(self.cfg.credentials_json, self.hint("credentials_json"))

    @cached_property
    def credentials(self) -> Any:
        """google-auth's service-account credentials (never asked on the emulator)."""
        from google.oauth2 import service_account
        try:
            # The assertion must name a scope, or the token endpoint answers invalid_scope.
            creds = service_account.Credentials.from_service_account_info(self.info,
                                                                          scopes=(SCOPE,))
        except ValueError:  # the library's text may quote key material: never relay it
            raise CheckFailed(Reason.CONFIG, "the private_key of the service account is not a"
                              " valid PEM private key", self.hint("credentials_json")) from None
        universe = creds.universe_domain
        if universe != "googleapis.com":  # as storage.Client refused such a key
            raise CheckFailed(Reason.CONFIG, "cannot use these credentials: the key is for the"
                              f" universe domain {short(universe, 60)!r}, not googleapis.com",
                              self.hint("credentials_json"))
        return creds

    @cached_property
    def email(self) -> str:
        return "anonymous (emulator)" if self.emulator else self.info["client_email"]

    def prepare(self) -> None:
        # Imports and the first httpx client (~75 ms) are inside the service's clock
        # (worker.due) but before any step starts, so a step's guaranteed half of the timeout
        # is spent waiting on GCS. The emulator needs no google-auth (anonymous: no token).
        if not (self.cfg.emulator_host or "").strip():
            import google.auth.transport  # noqa: F401
            import google.oauth2.service_account  # noqa: F401
        try:
            self.api.probe()
        except CheckFailed:  # a bad emulator URL or CA bundle: the first step says which
            pass

    def steps(self) -> Sequence[Step]:
        return (Step("gcs.credentials", self.check_credentials),
                Step("gcs.bucket", self.check_bucket),
                Step("gcs.permissions", self.check_permissions, gate=False, parallel=True),
                Step("gcs.canary", self.canary, gate=False, parallel=True))

    def close(self) -> None:
        # This run's canary, and alongside it (independent: only expired names are swept)
        # the orphans of earlier runs, once the canary proved this run may write.
        sweep = None
        if self._may_sweep and not self.ctx.cancel.is_set():
            sweep = threading.Thread(target=self._sweep, name="gcs-sweep", daemon=True)
            sweep.start()
        try:
            self._delete_canary()
            if sweep is not None:
                sweep.join(self.budget())
        finally:
            self.api.close()

    # -- steps --------------------------------------------------------------------------------
    def check_credentials(self) -> str | Outcome:
        if self.emulator:
            extra = " (credentials_json ignored)" if self.cfg.credentials_json else ""
            return f"emulator at {self.emulator}, anonymous credentials (local sandbox){extra}"
        self.credentials  # noqa: B018 - parses the private key
        email, own = self.info["client_email"], self.info["project_id"]
        token_uri = urlsplit(self.info["token_uri"])
        if self.ctx.profile.policy.require_tls and token_uri.scheme != "https":
            # The signed grant would cross the network in clear: a hop like any other.
            raise CheckFailed(Reason.CONFIG, f"the key's token_uri"
                              f" ({token_uri.scheme}://{token_uri.netloc}) is not https; this"
                              " profile requires TLS on every hop (policy.require_tls)",
                              self.hint("credentials_json"))
        if any(self.ctx.selected(c) for c in ("gcs.bucket", "gcs.permissions", "gcs.canary")):
            # The token exchange (a round trip the bucket would wait for) travels while gcs.tls
            # does its handshake; the steps that need it share it (GcsApi.token).
            self.ask_early(("token",), lambda _: self.api.token())
        msg = f"service account {email} (project {own})"
        if self.custom_endpoint:
            msg += f", GCS API at {self.api_endpoint}"
        if self.cfg.project_id and self.cfg.project_id != own:
            return warn(f"{msg}, but the profile's project is {self.cfg.project_id}: fine if the"
                        " account is granted access across projects, else the wrong key",
                        self.hint("project_id", "credentials_json"))
        return msg

    def check_bucket(self) -> str | Outcome:
        what = "GET bucket"
        got = self.api.resource(self.api.call("GET", bucket_path(self.cfg.bucket), what,
                                              "storage.buckets.get",
                                              params={"projection": "noAcl"}), what)
        where = f"on the emulator at {self.target}" if self.emulator else f"at {self.target}"
        facts = ", ".join(short(x, 40) for x in (got.get("location"), got.get("storageClass"))
                          if x and isinstance(x, str))
        found = f"bucket {self.cfg.bucket} exists {where}" + (f" ({facts})" if facts else "")
        held = _held(got)
        if held:
            # The platform deletes and replaces objects (gcs.permissions asks for delete), and
            # the canary is deleted after the verdict: both fail while an object is held.
            return warn(f"{found}, but {held}: the platform's deletes and overwrites fail"
                        " until then, and each run's canary stays until a later run can sweep"
                        " it", "use a bucket without retention or holds for the platform's"
                        f" objects, or run with --read-only; {self.hint('bucket')}")
        return found

    def check_permissions(self) -> str | Outcome:
        what = "testIamPermissions"
        try:
            resp = self.api.call("GET", bucket_path(self.cfg.bucket, "/iam/testPermissions"),
                                 what, "access to testIamPermissions",
                                 params={"permissions": PERMISSIONS})
        except CheckFailed as failed:
            # Counted only when the bucket passed (same wave): the route is what is missing.
            if failed.reason is Reason.MISSING:
                # gcp-storage-emulator before 2026.7.18 has no IAM routes; real GCS always does.
                return warn("the endpoint does not implement testIamPermissions (an old"
                            " emulator?): permissions not verified", self.hint("emulator_host"))
            raise
        held = self.api.resource(resp, what).get("permissions") or []  # absent when none held
        if not isinstance(held, list):
            raise CheckFailed(Reason.UNEXPECTED, f"{what} at {self.target} answered JSON that is"
                              " not a GCS answer: is the endpoint the GCS JSON API?",
                              self.hint(self.endpoint_key))
        missing = [p for p in PERMISSIONS if p not in held]
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
        # Deleted by close(), after every verdict, while the runner goes on with the next
        # plane: the delete decides nothing about the platform's use (gcs.permissions asks
        # for storage.objects.delete), and waiting for it cost the data plane a round trip.
        # One that fails leaves a canary whose name says when it expires; a later run's
        # sweep deletes it (ORPHAN_MARGIN).
        self._pending, path = name, object_path(self.cfg.bucket, name)
        self.api.call("POST", bucket_path(self.cfg.bucket, "/o", upload=True),
                      f"upload of {name}", "storage.objects.create", content=data,
                      headers={"Content-Type": "text/plain"},
                      params={"uploadType": "media", "name": name, "ifGenerationMatch": "0"})
        got = self.api.call("GET", path, f"download of {name}", "storage.objects.get",
                            missing=f"the canary {name} was not found right after its upload",
                            params={"alt": "media"}).content
        if got != data:
            raise CheckFailed(Reason.UNEXPECTED, f"the canary {name} read back different bytes",
                              self.hint("bucket"))
        self._may_sweep = True
        return f"canary {name} written and read back (deleted after the verdict)"

    # -- helpers ------------------------------------------------------------------------------
    def _sweep(self) -> None:
        """Delete expired canaries of earlier runs (see ORPHAN_MARGIN). Best effort: listing
        needs storage.objects.list, which the platform itself does not; the next run retries."""
        now, what = time.time(), "list of canaries"
        try:
            resp = self.api.call("GET", bucket_path(self.cfg.bucket, "/o"), what,
                                 "storage.objects.list",
                                 params={"prefix": CANARY_PREFIX, "maxResults": SWEEP_MAX})
            for item in self.api.resource(resp, what).get("items") or ():
                name = item.get("name") if isinstance(item, dict) else None
                m = _EXPIRES.match(name) if isinstance(name, str) else None
                if m and int(m[1]) < now:
                    self.api.call("DELETE", object_path(self.cfg.bucket, name),
                                  f"delete of {name}", "storage.objects.delete")
        except Exception:  # noqa: BLE001 - housekeeping: never a verdict
            pass

    def _delete_canary(self) -> None:
        name, self._pending = self._pending, None
        if name is None:
            return
        try:
            self.api.call("DELETE", object_path(self.cfg.bucket, name), f"delete of {name}",
                          "storage.objects.delete")
        except Exception:  # noqa: BLE001 - best effort: absent already, or the server is gone
            pass


def _held(bucket: dict[str, Any]) -> str | None:
    """What keeps new objects from being deleted, from the bucket's metadata (no request)."""
    policy = bucket.get("retentionPolicy")
    period = policy.get("retentionPeriod") if isinstance(policy, dict) else None
    try:
        seconds = int(period) if period is not None else 0
    except (TypeError, ValueError):
        seconds = 0
    if seconds > 0:
        locked = " (locked)" if policy.get("isLocked") else ""
        return (f"it has a retention policy{locked}: every object is kept at least"
                f" {_span(seconds)}")
    if bucket.get("defaultEventBasedHold") is True:
        return "new objects get an event-based hold by default (defaultEventBasedHold)"
    return None


def _span(seconds: int) -> str:
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            n = seconds / size
            return f"{n:g} {unit if n != 1 else unit[:-1]}"
    return f"{seconds} s"


CHECK = GcsCheck
