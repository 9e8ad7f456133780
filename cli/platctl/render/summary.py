"""Words shared by every human-facing renderer: the verdict line and the first failure."""
from __future__ import annotations

from platctl.result import CheckResult, Report, Status

SYMBOL = {Status.PASS: "✓", Status.WARN: "!", Status.FAIL: "✗", Status.SKIP: "-"}


def counts(report: Report) -> dict[Status, int]:
    out = {s: 0 for s in Status}
    for c in report.checks:
        out[c.status] += 1
    return out


def verdict(report: Report) -> str:
    n = counts(report)
    tail = ", ".join(f"{n[s]} {s.value}" for s in Status if n[s])
    if report.ok:
        return f"OK: every required check passed ({tail}) [profile {report.profile}]"
    return f"FAILED: {len(report.failed)} required check(s) failed ({tail}) [profile {report.profile}]"


def violation(c: CheckResult) -> str:
    """The original contract's one-liner: what failed and which setting to fix."""
    hint = f" {c.hint[0].upper()}{c.hint[1:]}." if c.hint else ""
    return f"Platform contract violation: {c.id} failed: {c.message}.{hint}"
