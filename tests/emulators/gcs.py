"""GCS for the tests: the real gcp-storage-emulator as a subprocess, plus a small stub.

`GcsEmulator` runs `gcp-storage-emulator start --in-memory` (2026.7.19, pinned in the venv: the
version with testIamPermissions stubs, protocols.md §5) from the venv's bin on a free port,
waits for `GET /` to answer 200, and reads its access log so tests can count requests (the
emulator authenticates nothing, so "no upload happened" is only visible there).

`GcsStub` answers what the emulator cannot: JSON 401/403 errors as real GCS words them, a
testIamPermissions answer with some permissions withheld, and an OAuth token endpoint, for
the service-account path (its token_uri can point here).
"""
from __future__ import annotations

import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

from tests.emulators.base import Emulator, Reply, Request, json_reply
from tests.support import free_port

# The emulator's console script, run with a listen backlog of 128 instead of http.server's 5:
# a single-threaded server with a 5-deep queue overflows under many concurrent runs
# (test_leftovers: 40 processes x 3 concurrent requests), the kernel answers with SYN
# cookies, and a request sent in two segments (an upload's headers, then its body) then fails
# the cookie check and is reset. Real GCS has no such queue.
LAUNCH = ("import sys, http.server; http.server.HTTPServer.request_queue_size = 128;"
          " from gcp_storage_emulator.__main__ import main;"
          " sys.argv[0] = 'gcp-storage-emulator'; sys.exit(main())")


class GcsEmulator:
    def __init__(self, bucket: str = "platform") -> None:
        self.bucket = bucket
        self.port = 0
        self.proc: subprocess.Popen | None = None
        self._log = Path(tempfile.mkstemp(prefix="gcs-emulator-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "GcsEmulator":
        self.port = free_port()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # the access log must be readable live
        env.pop("STORAGE_EMULATOR_HOST", None)
        with open(self._log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", LAUNCH, "start", "--host=127.0.0.1", f"--port={self.port}",
                 "--in-memory", f"--default-bucket={self.bucket}"], stdout=log,
                stderr=subprocess.STDOUT, env=env)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gcp-storage-emulator exited with {self.proc.returncode}:"
                                   f" {self.log()[-2000:]}")
            try:
                if self._get("/").status == 200:
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise TimeoutError("gcp-storage-emulator did not answer GET / in time")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.unlink(missing_ok=True)

    def __enter__(self) -> "GcsEmulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection ---------------------------------------------------------------------------
    def _get(self, path: str):  # noqa: ANN202
        return urllib.request.urlopen(self.url + path, timeout=5)

    def objects(self, prefix: str = "") -> list[str]:
        """Object names in the bucket, through the emulator's JSON API."""
        with self._get(f"/storage/v1/b/{self.bucket}/o?prefix={quote(prefix)}") as resp:
            return [o["name"] for o in json.load(resp).get("items", [])]

    def wipe(self, keep_buckets: bool = True) -> None:
        self._get("/wipe" + ("?keep-buckets=1" if keep_buckets else "")).close()

    def log(self) -> str:
        return self._log.read_text(errors="replace")

    def requests(self, method: str = "", path_prefix: str = "") -> list[str]:
        """Access-log lines ('"POST /upload/... HTTP/1.1" 200 -') matching method and path."""
        pattern = re.compile(r'"(\w+) (\S+) HTTP/1\.[01]" (\d+)')
        return [m.group(0) for m in pattern.finditer(self.log())
                if (not method or m.group(1) == method) and m.group(2).startswith(path_prefix)]


class GcsStub(Emulator):
    """GCS-shaped answers for the cases the real emulator cannot produce."""

    name = "gcs-stub"

    def __init__(self) -> None:
        super().__init__()
        self.bucket_status = 200  # 200, 401 or 403 for GET /storage/v1/b/{bucket}
        self.held: list[str] | None = None  # testIamPermissions answer (None: all requested)
        self.token_reply = json_reply(400, {"error": "invalid_grant",
                                            "error_description": "Invalid JWT Signature."})

    def reset(self) -> None:
        super().reset()
        self.bucket_status, self.held = 200, None

    def serve_tls(self, cert: str | Path, key: str | Path) -> str:
        """Switch the (started, still unused) listener to TLS; returns the https:// URL."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert), str(key))
        assert self._server is not None, "start the stub first"
        self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
        return f"https://127.0.0.1:{self.port}"

    def route(self, req: Request) -> Reply:
        if req.method == "POST" and req.path == "/token":
            return self.token_reply
        m = re.fullmatch(r"/storage/v1/b/([^/]+)(/iam/testPermissions)?", req.path)
        if not m:
            return Reply(404, b"")
        if m.group(2):
            asked = req.query.get("permissions", [])
            held = asked if self.held is None else [p for p in asked if p in self.held]
            return json_reply(200, {"kind": "storage#testIamPermissionsResponse",
                                    "permissions": held})
        if self.bucket_status == 401:
            return _error(401, "authError", "Invalid Credentials")
        if self.bucket_status == 403:
            return _error(403, "forbidden", "anonymous caller does not have storage.buckets.get"
                          " access to the Google Cloud Storage bucket.")
        return json_reply(200, {"kind": "storage#bucket", "name": m.group(1), "id": m.group(1),
                                "location": "EUROPE-WEST1", "storageClass": "STANDARD"})


def _error(code: int, reason: str, message: str) -> Reply:
    return json_reply(code, {"error": {"code": code, "message": message, "errors": [
        {"domain": "global", "reason": reason, "message": message}]}})
