"""`platctl profile lint`: a profile file judged as written, in this environment.

Findings, each with file:line, key and a fix:
  error    the loader would refuse the profile here (schema, policy): `validate` exits 2
  warning  it loads, but is fragile or unsafe: a secret written inline instead of `${VAR}`;
           a `${VAR:-default}` that falls back to what the policy refuses (plaintext, no
           credentials, an emulator) when VAR is unset; a waiver expired or ending soon
  note     a variable the profile needs is not set here. Not an error: a profile that reads
           its secrets from the deployment's environment must lint clean in CI without them.
           Fields that depend on it are checked once it is set.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from platctl.profiles.loader import ProfileError
from platctl.profiles.source import STANDIN, Source, build, expand_leniently

# Where the built-in profiles read each secret: the fix names the key to move it to.
ENV_KEY = {("redis", "url"): "REDIS_URL", ("arango", "password"): "ARANGO_PASSWORD",
           ("supabase", "service_key"): "SUPABASE_SERVICE_KEY",
           ("supabase", "anon_key"): "SUPABASE_ANON_KEY",
           ("gcs", "credentials_json"): "GCS_CREDENTIALS_JSON",
           ("meilisearch", "api_key"): "MEILI_MASTER_KEY", ("consul", "token"): "CONSUL_TOKEN",
           ("telemetry", "headers"): "OTEL_EXPORTER_OTLP_HEADERS",
           ("arango", "url"): "ARANGO_URL", ("supabase", "url"): "SUPABASE_URL",
           ("meilisearch", "url"): "MEILISEARCH_URL", ("consul", "url"): "CONSUL_HOST",
           ("telemetry", "endpoint"): "OTEL_EXPORTER_OTLP_ENDPOINT"}
SEVERITIES = ("error", "warning", "note")


@dataclass(frozen=True)
class Finding:
    severity: str
    line: int | None
    key: str | None
    message: str
    fix: str | None = None


def lint(source: Source, today: date) -> list[Finding]:
    profile, errors = build(source)
    found = [Finding("error", line, ".".join(map(str, loc)) or None, message,
                     "see contract/profile.schema.json") for loc, line, message in errors]
    found += _unset_variables(source)
    found += _inline_secrets(source)
    if profile is not None:
        found += _policy(source, profile)
        found += _waivers(source, profile, today)
        if not source.missing:
            found += _as_the_loader_sees_it(source, found)
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(found, key=lambda f: (order[f.severity], f.line or 0, f.key or ""))


def _unset_variables(source: Source) -> list[Finding]:
    found = []
    for name, leaves in source.missing.items():
        first = re.search(r"\$\{(\w+):?-\$\{" + name + r"\b", leaves[0].template or "")
        what = f"neither {first.group(1)} nor {name} is" if first else f"{name} is not"
        also = f" (also for {', '.join(x.key for x in leaves[1:])})" if leaves[1:] else ""
        found.append(Finding("note", leaves[0].line, leaves[0].key,
                             f"{what} set here; validate needs it{also}"))
    return found


def _policy(source: Source, profile) -> list[Finding]:
    """Violations of the profile's own policy: as resolved here (error), and as each
    template falls back when its optional variables are unset (warning)."""
    from platctl.profiles.policy import violations

    found, refused = [], set()
    for loc, message in violations(profile):
        if source.unresolved(loc) is None:
            refused.add(loc)
            found.append(Finding("error", _line(source, loc), ".".join(loc), message,
                                 "see the profile's policy: section"))
    pol = profile.policy
    for path, leaf in source.leaves.items():
        if leaf.template is None or path in refused or len(path) != 2:
            continue
        value, forced = expand_leniently(leaf.template, path, source.file, source.lines, {})
        if value == STANDIN or STANDIN + "." in value:
            continue  # nothing but a required variable: no fallback to judge
        optional = [v for v in leaf.variables if v not in forced]
        if optional:
            severity = "warning"
            when = f"when {' / '.join(optional)} {'is' if len(optional) == 1 else 'are'} unset"
            fix = f"always set {', '.join(optional)}, or change the default in the file"
        else:  # the file's own text decides, whatever the variables hold
            severity, when, fix = "error", "whatever the environment holds", "change the file"
        scheme = urlsplit(value).scheme if "://" in value else None
        if pol.require_tls and scheme in ("http", "redis"):
            found.append(Finding(severity, leaf.line, leaf.key,
                                 f"is {scheme}:// {when}, which policy.require_tls refuses",
                                 fix.replace("the default", f"the default to {scheme}s://")))
        if not pol.allow_emulators and path == ("gcs", "emulator_host") and value:
            found.append(Finding("warning", leaf.line, leaf.key,
                                 f"is an emulator {when}, which"
                                 " policy.allow_emulators refuses", fix))
        if pol.require_credentials and path in _CREDENTIAL_FIELDS and value == "":
            found.append(Finding(severity, leaf.line, leaf.key,
                                 f"is empty {when}, which policy.require_credentials refuses",
                                 f"use ${{{optional[0]}:?...}}: a missing credential is then"
                                 " named at load time" if optional else fix))
    return found


_CREDENTIAL_FIELDS = {("arango", "password"), ("supabase", "service_key"),
                      ("supabase", "anon_key"), ("gcs", "credentials_json"),
                      ("meilisearch", "api_key"), ("consul", "token")}


def _inline_secrets(source: Source) -> list[Finding]:
    """A secret in the file's text (or in a template's default) ends up in version control."""
    from platctl.secrets import SecretURL

    found = []
    for path in _secret_paths():
        leaf = source.leaves.get(path)
        if leaf is None or not isinstance(leaf.raw, str) or not leaf.raw:
            continue
        if leaf.template is None:
            written = leaf.raw.replace("$$", "$")
        else:
            written, _ = expand_leniently(leaf.template, path, source.file, source.lines, {})
            if STANDIN in written:
                continue
        is_url = path[-1] in ("url", "endpoint")
        if not written or is_url and not SecretURL(written).secrets:
            continue
        where = "in the profile" if leaf.template is None else "as the default of a ${...}"
        what = "a password in the URL" if is_url else "a secret"
        key = ENV_KEY.get(path, "a variable")
        found.append(Finding("warning", leaf.line, leaf.key, f"{what} is written {where}",
                             f"read it from the environment: {'${' + key + '}'}"
                             if key != "a variable" else "read it from an environment variable"))
    return found


def _secret_paths() -> list[tuple[str, str]]:
    from platctl.profiles.model import Profile

    out = []
    for section, info in Profile.model_fields.items():
        model = info.annotation
        for name, sub in getattr(model, "model_fields", {}).items():
            if "Secret" in repr(sub.annotation):
                out.append((section, name))
    return out


def _waivers(source: Source, profile, today: date) -> list[Finding]:
    from platctl.waivers import SOON_DAYS, days_left

    found = []
    for i, w in enumerate(profile.waivers):
        left, line = days_left(w, today), _line(source, ("waivers", i, "until"))
        key = f"waivers.{i}"
        if left < 0:
            found.append(Finding("warning", line, key, f"the waiver of {w.check} expired on"
                                 f" {w.until.isoformat()}: the check fails again",
                                 "fix the failure and remove the waiver, or extend `until`"))
        elif left <= SOON_DAYS:
            found.append(Finding("warning", line, key, f"the waiver of {w.check} expires in"
                                 f" {left} day{'s' if left != 1 else ''}"
                                 f" ({w.until.isoformat()})",
                                 "fix the failure before then, or extend `until`"))
    return found


def _as_the_loader_sees_it(source: Source, found: list[Finding]) -> list[Finding]:
    """With every variable set, the real loader must agree: lint clean ⇒ validate loads."""
    from platctl.profiles.document import parse
    from platctl.profiles.policy import enforce
    from platctl.profiles.validate import validate

    try:  # load_path's steps, on the text already read (the file may be a pipe)
        data, lines = parse(source.text, source.file, source.env)
        if isinstance(data, dict):
            data.setdefault("name", source.data["name"])
            enforce(validate(data, lines, source.file), lines, source.file)
    except ProfileError as exc:
        if not any(f.severity == "error" for f in found):
            return [Finding("error", exc.line, exc.key, exc.message)]
    return []


def _line(source: Source, loc: tuple[Any, ...]) -> int | None:
    from platctl.profiles.validate import line_of

    return line_of(loc, source.lines)


def as_dict(f: Finding) -> dict[str, Any]:
    return asdict(f)
