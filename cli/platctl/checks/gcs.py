"""Google Cloud Storage: the platform's blob bytes.

google-cloud-storage waits 60 s per request and retries for 120 s by default (protocols.md §5),
so every call passes `retry=None` and `timeout=(t, t)`. The endpoint is always given
explicitly (the emulator's, else gcs.endpoint, storage.googleapis.com by default): the
library would otherwise read STORAGE_EMULATOR_HOST / API_ENDPOINT_OVERRIDE from the process
environment, which is not the profile. gcs.endpoint is a real GCS API at another URL (Private
Service Connect, a restricted endpoint): real credentials, never the emulator's anonymous ones.
The requests sessions ignore the environment too (REQUESTS_CA_BUNDLE would silently override
the one CA setting), as HttpProbe does. Failures are classified in checks/gcs_errors.py.

--read-only skips the canary but still asks testIamPermissions for create/get/delete: asking
writes nothing, and the platform needs all three whatever flags platctl runs with.
"""
from __future__ import annotations

import re
import secrets
import time
from collections.abc import Sequence
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, skip, warn
from platctl.checks.gcs_credentials import service_account_info
from platctl.checks.gcs_errors import classify_call, host_port, one_attempt, short
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
_GONE = (Reason.TIMEOUT, Reason.REFUSED, Reason.RESET)  # the server stopped answering


class GcsCheck(ServiceCheck):
    service = "gcs"
    env = {"project_id": "GCS_PROJECT_ID", "bucket": "GCS_BUCKET_NAME",
           "credentials_json": "GCS_CREDENTIALS_JSON", "emulator_host": "STORAGE_EMULATOR_HOST",
           "endpoint": "GCS_ENDPOINT"}

    def __init__(self, ctx) -> None:  # noqa: ANN001
        super().__init__(ctx)
        self._pending: Any = None  # a canary blob that may exist and is not deleted yet
        self._may_sweep = False  # the canary went through: this run may write and delete
        self.token_seen: dict[str, Any] = {}  # the token endpoint's last Date header

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
        if self.emulator:
            from google.auth.credentials import AnonymousCredentials
            return AnonymousCredentials()
        from google.cloud.storage import Client
        from google.oauth2 import service_account
        try:
            # Scoped as storage.Client scopes its own: the assertion must name a scope, or the
            # token endpoint answers invalid_scope (we pass our own session, so it cannot).
            return service_account.Credentials.from_service_account_info(self.info,
                                                                         scopes=Client.SCOPE)
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
        http = AuthorizedSession(self.credentials, refresh_status_codes=(),
                                 auth_request=one_attempt(token_session, self.budget,
                                                          self.token_seen))
        http.trust_env, http.verify = False, verify
        project = self.cfg.project_id or (None if self.emulator else self.info["project_id"])
        try:
            client = storage.Client(project=project, credentials=self.credentials, _http=http,
                                    client_options={"api_endpoint": self.api_endpoint})
        except ValueError as exc:  # universe_domain of the key does not match the endpoint
            raise CheckFailed(Reason.CONFIG, f"cannot use these credentials: {short(exc)}",
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
                Step("gcs.canary", self.canary, gate=False, parallel=True))

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
        token_uri = urlsplit(self.info["token_uri"])
        if self.ctx.profile.policy.require_tls and token_uri.scheme != "https":
            # The signed grant would cross the network in clear: a hop like any other.
            raise CheckFailed(Reason.CONFIG, f"the key's token_uri"
                              f" ({token_uri.scheme}://{token_uri.netloc}) is not https; this"
                              " profile requires TLS on every hop (policy.require_tls)",
                              self.hint("credentials_json"))
        msg = f"service account {email} (project {own})"
        if self.custom_endpoint:
            msg += f", GCS API at {self.api_endpoint}"
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
            raise classify_call(self, what, permission, exc, missing) from None

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


CHECK = GcsCheck
