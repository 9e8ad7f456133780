"""Waivers: a profile accepts a known failure of one check, with a reason, until a date.

A waived failure is reported as `warn` ("waived until DATE: REASON — <what failed>"), keeps
its failure class, and neither blocks the next plane nor makes the report not ok. The day
after `until` the waiver no longer applies: the check fails again, and its message says the
waiver expired so nobody hunts for a new bug. "Today" is always passed in (tests pin it).
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from platctl.checks.base import Outcome
from platctl.result import CheckResult, Status

PREFIX = "waived until "
SOON_DAYS = 14  # `profile lint` warns about waivers ending within this many days


def active(waivers: Iterable, check_id: str, today: date):
    """The waiver that covers `check_id` today (the longest-running one), else None."""
    live = [w for w in waivers if w.check == check_id and w.until >= today]
    return max(live, key=lambda w: w.until, default=None)


def expired(waivers: Iterable, check_id: str, today: date):
    """The most recently expired waiver of `check_id`, else None."""
    past = [w for w in waivers if w.check == check_id and w.until < today]
    return max(past, key=lambda w: w.until, default=None)


def apply(waivers: Iterable, check_id: str, outcome: Outcome, today: date) -> Outcome:
    """The outcome as reported: a failure under a live waiver becomes a warning."""
    if outcome.status is not Status.FAIL:
        return outcome
    waivers = tuple(waivers)
    live = active(waivers, check_id, today)
    if live is not None:
        return Outcome(Status.WARN, f"{PREFIX}{live.until.isoformat()}: {live.reason} —"
                       f" {outcome.message}", outcome.hint, outcome.reason)
    gone = expired(waivers, check_id, today)
    if gone is not None:
        return Outcome(Status.FAIL, f"{outcome.message} (its waiver expired on"
                       f" {gone.until.isoformat()})", outcome.hint, outcome.reason)
    return outcome


def is_waived(result: CheckResult) -> bool:
    """A failure turned into a warning by a waiver (it still failed: later steps were not run)."""
    return result.status is Status.WARN and result.message.startswith(PREFIX)


def days_left(waiver, today: date) -> int:
    return (waiver.until - today).days
