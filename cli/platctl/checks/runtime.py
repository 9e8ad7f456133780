"""The execution plane: the runtime that `boot` will exec must exist, and its port be free."""
from __future__ import annotations

import errno
import os
import shutil
import socket
from collections.abc import Sequence

from platctl.checks.base import CheckFailed, Outcome, ServiceCheck, Step, skip
from platctl.result import Reason

NO_COMMAND = ("no runtime command: pass it after --, or set PLATFORM_RUNTIME_CMD"
              " or execution.command")


def resolve_executable(program: str, path_env: str | None) -> str:
    """The absolute program `boot` would exec, or CheckFailed MISSING / FORBIDDEN.
    MISSING maps to exit 127 and FORBIDDEN to 126 in `boot`."""
    if os.sep in program:
        if not os.path.exists(program):
            raise CheckFailed(Reason.MISSING, f"runtime command {program} does not exist",
                              "check PLATFORM_RUNTIME_CMD (profile: execution.command)")
        if os.path.isdir(program) or not os.access(program, os.X_OK):
            raise CheckFailed(Reason.FORBIDDEN, f"runtime command {program} is not executable",
                              f"chmod +x {program}, or fix PLATFORM_RUNTIME_CMD")
        return os.path.abspath(program)
    found = shutil.which(program, path=path_env)
    if found:
        return found
    if shutil.which(program, mode=os.F_OK, path=path_env):
        raise CheckFailed(Reason.FORBIDDEN, f"runtime command {program} is on PATH but not"
                          " executable", "check PLATFORM_RUNTIME_CMD (profile: execution.command)")
    raise CheckFailed(Reason.MISSING, f"runtime command {program!r} not found on PATH",
                      "check PLATFORM_RUNTIME_CMD (profile: execution.command) and PATH")


class RuntimeCheck(ServiceCheck):
    service = "runtime"
    env = {"command": "PLATFORM_RUNTIME_CMD"}

    def steps(self) -> Sequence[Step]:
        return (Step("runtime.command", self.command, gate=False),
                Step("runtime.port", self.port, gate=False))

    def command(self) -> str:
        argv = self.ctx.runtime_command
        if not argv:
            raise CheckFailed(Reason.CONFIG, NO_COMMAND, self.hint("command"))
        path = resolve_executable(argv[0], self.ctx.env.get("PATH"))
        return f"runtime command resolves to {path}"

    def port(self) -> str | Outcome:
        port, host = self.cfg.port, self.cfg.host
        if port is None:
            return skip("no port declared (execution.port)")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as s:
            # Servers bind with SO_REUSEADDR, so a port in TIME_WAIT is free for them too.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    raise CheckFailed(Reason.UNAVAILABLE, f"port {port} on {host} is already in"
                                      " use by another process", "stop the process holding it,"
                                      " or change execution.port") from None
                if exc.errno == errno.EACCES:
                    raise CheckFailed(Reason.FORBIDDEN, f"binding port {port} needs privileges",
                                      "use a port above 1024 (execution.port)") from None
                raise CheckFailed(Reason.CONFIG, f"cannot bind {host}:{port}: {exc.strerror}",
                                  "check execution.host / execution.port") from None
            except (TypeError, ValueError):  # a host the resolver cannot even encode (IDNA)
                raise CheckFailed(Reason.CONFIG, f"cannot bind {host}:{port}: not a valid host"
                                  " name", "check execution.host") from None
        return f"port {port} on {host} is free"


CHECK = RuntimeCheck
