"""Issue 5, item 4: the deployment recipes in docs/ say what the real CLI accepts.

Each recipe is parsed as YAML; every platctl command line in it (compose entrypoint+command,
Kubernetes command+args, workflow `run:` scripts) is checked against the installed console
script: each option appears in `platctl COMMAND --help`, and the whole line parses with the
real option types (durations, output formats, the `--` runtime command). Environment keys the
recipe sets for platctl are the platform contract's or platctl's own.
"""
from __future__ import annotations

import json
import re
import shlex
import subprocess
from functools import cache
from pathlib import Path

import pytest
import yaml

from tests.support import PLATCTL, clean_env

DOCS = Path(__file__).resolve().parents[1] / "docs"


@cache
def help_text(command: str) -> str:
    proc = subprocess.run([PLATCTL, command, "--help"], env=clean_env(COLUMNS="200"),
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@cache
def contract_keys() -> frozenset[str]:
    proc = subprocess.run([PLATCTL, "contract", "-o", "json"], env=clean_env(),
                          capture_output=True, text=True, timeout=30, check=True)
    return frozenset(k for s in json.loads(proc.stdout)["services"] for k in s["env_keys"])


def docs(name: str) -> list:
    return [d for d in yaml.safe_load_all((DOCS / name).read_text()) if d]


def shell_commands(script: str) -> list[list[str]]:
    """platctl invocations in a `run:` script: continuations joined, cut at redirections
    and `||`/`&&`/`;`/`|`."""
    out = []
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i, w in enumerate(words):
            if Path(w).name == "platctl":
                cmd = []
                for word in words[i:]:
                    if word in ("||", "&&", ";", "|") or word.startswith((">", "<", "2>")):
                        break
                    cmd.append(word)
                out.append(cmd)
    return out


def check_command_line(argv: list[str]) -> str:
    """Options named in --help, the line parsed by the real CLI; returns the subcommand."""
    from platctl.app import command

    assert Path(argv[0]).name == "platctl", argv
    sub, args = argv[1], argv[2:]
    helped = help_text(sub)
    options = args[:args.index("--")] if "--" in args else args
    for word in options:
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", helped), \
                f"{name} is not an option of `platctl {sub}`"
    # Parsing only (no command runs): click converts every value with its real type and
    # callback, so `--wait 2 minutes` or `-o yaml` fails here as it would in production.
    sub_cmd = command().commands.get(sub)
    assert sub_cmd is not None, f"no command {sub}"
    sub_cmd.make_context(sub, list(args))
    return sub


# -- the files ----------------------------------------------------------------------------------
def test_docker_compose_runs_boot_with_wait_as_entrypoint():
    (compose,) = docs("docker-compose.yml")
    runtime = compose["services"]["runtime"]
    argv = [*runtime["entrypoint"], *runtime["command"]]
    assert check_command_line(argv) == "boot"
    assert "--wait=120s" in argv and argv[argv.index("--") + 1:] == runtime["command"]
    assert runtime.get("init") is True  # signals forwarded to the process platctl becomes
    ready = next(a.split("=", 1)[1] for a in argv if a.startswith("--ready-file="))
    assert runtime["healthcheck"]["test"] == ["CMD", "test", "-f", ready]
    assert any(ready.startswith(m) for m in runtime["tmpfs"])  # a writable place for it
    assert set(runtime["environment"]) <= contract_keys(), \
        set(runtime["environment"]) - contract_keys()


def test_kubernetes_boot_as_command_and_validate_as_init_container():
    boot_dep, init_dep = docs("kubernetes.yaml")
    assert boot_dep["kind"] == init_dep["kind"] == "Deployment"
    (runtime,) = boot_dep["spec"]["template"]["spec"]["containers"]
    argv = [*runtime["command"], *runtime["args"]]
    assert check_command_line(argv) == "boot"
    assert any(a.startswith("--wait=") for a in argv)
    ready = next(a.split("=", 1)[1] for a in argv if a.startswith("--ready-file="))
    assert runtime["startupProbe"]["exec"]["command"] == ["test", "-f", ready]
    mounts = {m["mountPath"] for m in runtime["volumeMounts"]}
    assert str(Path(ready).parent) in mounts  # the root filesystem is read-only
    assert str(Path(runtime["env"][0]["value"]).parent) in mounts  # PLATCTL_REPORT too
    probe = runtime["startupProbe"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 120  # covers the --wait
    (init,) = init_dep["spec"]["template"]["spec"]["initContainers"]
    assert check_command_line(init["command"]) == "validate"
    assert "--wait=120s" in init["command"]
    for c in (runtime, init):
        assert {e["name"] for e in c.get("env", [])} <= contract_keys() | {"PLATCTL_REPORT"}


def test_github_actions_preflight_uses_github_output_and_uploads_junit():
    (workflow,) = docs("github-actions.yml")
    steps = workflow["jobs"]["preflight"]["steps"]
    commands = [cmd for s in steps if "run" in s for cmd in shell_commands(s["run"])
                if Path(cmd[0]).name == "platctl"]
    assert len(commands) == 2
    for cmd in commands:
        assert check_command_line(cmd) == "validate"
    formats = [cmd[cmd.index("--output") + 1] for cmd in commands]
    assert formats == ["github", "junit"] and "--wait" in commands[0]
    junit_step = next(s for s in steps if "run" in s and "junit" in s["run"])
    produced = re.search(r">\s*(\S+\.xml)", junit_step["run"]).group(1)
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == produced and upload["if"] == "always()"
    env = workflow["jobs"]["preflight"]["env"]
    assert set(env) <= contract_keys(), set(env) - contract_keys()


def test_recipes_md_links_every_recipe():
    text = (DOCS / "recipes.md").read_text()
    for name in ("docker-compose.yml", "kubernetes.yaml", "github-actions.yml"):
        assert f"]({name})" in text and (DOCS / name).is_file()


# -- the checker itself must be able to fail ----------------------------------------------------
@pytest.mark.parametrize("argv,words", [
    (["platctl", "boot", "--wiat=120s", "--", "rt"], "not an option"),
    (["platctl", "validate", "--ready-file"], "requires an argument"),
    (["platctl", "validate", "--wait", "two minutes"], "not a duration"),
    (["platctl", "validate", "-o", "yaml"], "yaml"),
    (["platctl", "boot", "--keep-going", "--", "rt"], "not an option"),
])
def test_the_checker_rejects_what_the_cli_rejects(argv, words):
    with pytest.raises(BaseException) as info:  # AssertionError or click's usage errors
        check_command_line(argv)
    assert words in str(info.value), info.value
