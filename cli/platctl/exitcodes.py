"""Every exit code platctl can return, in one place (DESIGN.md, "Exit codes")."""
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # every required check passed (warnings allowed)
    FAILED = 1  # at least one required check failed
    USAGE = 2  # usage or profile error
    INTERNAL = 3  # a bug in platctl; the message says so
    WAIT_EXPIRED = 124  # --wait deadline passed with checks still failing
    NOT_EXECUTABLE = 126  # boot: runtime command found but not executable
    NOT_FOUND = 127  # boot: runtime command not found
    SIGINT = 130
    SIGTERM = 143
