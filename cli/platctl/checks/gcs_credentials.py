"""The service-account key of checks/gcs.py: inline JSON or a file path, checked field by field.

Messages never quote the value, a parser's excerpt of it or a field's content: it holds the
private key. Whether the key is still valid only the token endpoint can say (gcs_errors.py).
"""
from __future__ import annotations

import json
import os
from typing import Any

from platctl.checks.base import CheckFailed
from platctl.result import Reason

REQUIRED_FIELDS = ("client_email", "private_key", "token_uri", "project_id")


def service_account_info(secret: Any, hint: str) -> dict[str, Any]:
    """The service-account JSON (inline, or a file path), checked field by field. Messages
    never quote the value or a parser excerpt: it holds the private key."""
    if secret is None:
        raise CheckFailed(Reason.MISSING, "no service-account credentials configured (needed"
                          " unless an emulator is used)", hint)
    raw = secret.get_secret_value().strip()
    source = "the inline credentials"
    if not raw.startswith(("{", "[")):
        path = os.path.expanduser(raw)
        if len(raw) > 4096 or "\n" in raw or not os.path.isfile(path):
            raise CheckFailed(Reason.CONFIG, "the credentials are neither inline JSON nor the"
                              " path of an existing file", hint)
        try:
            with open(path, encoding="utf-8") as fh:
                raw, source = fh.read(), "the credentials file"
        except (OSError, UnicodeDecodeError) as exc:
            raise CheckFailed(Reason.CONFIG, "cannot read the credentials file"
                              f" ({type(exc).__name__})", hint) from None
    try:
        info = json.loads(raw)
    except ValueError as exc:  # position only: the parser's own text may quote the key
        where = f" (line {exc.lineno}, column {exc.colno})" if hasattr(exc, "lineno") else ""
        raise CheckFailed(Reason.CONFIG, f"{source}: not valid JSON{where}", hint) from None
    kind = info.get("type") if isinstance(info, dict) else None
    if kind != "service_account":
        what = repr(kind) if isinstance(kind, str) and len(kind) < 40 else "missing"
        raise CheckFailed(Reason.CONFIG, f"not a service-account key (type is {what},"
                          " expected 'service_account')", hint)
    missing = [f for f in REQUIRED_FIELDS if not isinstance(info.get(f), str) or not info[f]]
    if missing:
        raise CheckFailed(Reason.CONFIG, "the service-account key lacks " + ", ".join(missing),
                          hint)
    return info

