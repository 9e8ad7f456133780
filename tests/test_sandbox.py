"""The `make demo` sandbox: the unchanged built-in `vm` profile, fed only the contract's
environment keys, passes every check of all eight services and every plane, then boots."""
from __future__ import annotations

import json
import subprocess

from platctl import contract
from tests.sandbox import sandbox
from tests.support import PLATCTL


def test_vm_profile_is_all_green_against_the_sandbox_and_boots():
    with sandbox() as (env, _):
        proc = subprocess.run([PLATCTL, "validate", "-p", "vm", "-o", "json"], env=env,
                              capture_output=True, text=True, timeout=60)
        boot = subprocess.run([PLATCTL, "boot", "-p", "vm"], env=env, capture_output=True,
                              text=True, timeout=60)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and report["ok"] is True, proc.stdout
    assert [p["name"] for p in report["planes"]] == list(contract.PLANES)
    assert {c["service"] for c in report["checks"]} == set(contract.BY_NAME)
    # The sandbox is plaintext (as the vm profile's defaults): SERVICE.tls has nothing to inspect.
    plaintext = [c["id"] for c in report["checks"] if c["id"].endswith(".tls")
                 and c["status"] == "skip" and "plaintext endpoint" in c["message"]]
    assert len(plaintext) == 7, plaintext
    not_passing = [(c["id"], c["status"], c["message"]) for c in report["checks"]
                   if c["status"] != "pass" and c["id"] not in plaintext]
    assert not_passing == []
    assert boot.returncode == 0, boot.stderr
    assert "sample runtime: running as pid" in boot.stdout
