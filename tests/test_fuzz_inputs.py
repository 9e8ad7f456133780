"""Bad input never crashes platctl (issue 4): property-based tests with hypothesis over
(a) profile documents, (b) environment values feeding `${...}` substitution and
(c) command-line options.

The property of every run: exit 0, 1 or 2 with a message, never 3 (a bug), never a traceback,
and within a few seconds. The CLI runs in-process (an example costs milliseconds) with its
stdout a strict UTF-8 stream, like a real pipe under a UTF-8 locale. Every service points at a
closed port on 127.0.0.1 and only local checks (runtime, duckdb) or `profile lint|show` run,
so no example touches the network; hosts that reach the resolver end in `.invalid`. A few
subprocess runs prove the nastiest inputs (directory, symlink loop, binary file, alias bomb,
FIFO) end to end.

The hypothesis example counts are printed by the last test:
    .venv/bin/python -m pytest tests/test_fuzz_inputs.py -q -p no:cacheprovider -s
"""
from __future__ import annotations

import copy
import io
import json
import os
import re
import signal
import socket
import subprocess
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from platctl import contract
from platctl.__main__ import main
from platctl.profiles import loader
from platctl.profiles.envsubst import SubstitutionError, expand
from platctl.profiles.model import Profile
from tests.support import BASE_PROFILE, PLATCTL, clean_env, deep_merge, platctl

COUNTS: Counter[str] = Counter()  # hypothesis examples executed, per property
BUDGET = 5.0  # "within a few seconds": the longest one in-process run may take
# No explain phase: it re-runs failures under a line tracer, slowing pure-Python YAML parsing
# tenfold, so a slow-but-fine run would be reported as a hang.
FUZZ = settings(database=None, print_blob=True,
                phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.large_base_example])


# -- running the CLI in-process ---------------------------------------------------------------
class Hang(BaseException):
    """Raised in the main thread when a run outlives the watchdog (a blocking read, ...).
    A BaseException, so platctl's own last-line `except Exception` cannot swallow it."""


def _on_watchdog(signum, frame):  # noqa: ANN001
    raise Hang("platctl gave no verdict in time (blocked?)")


@contextmanager
def watchdog(seconds: float):
    """Interrupt the main thread after `seconds` (SIGUSR1; SIGALRM belongs to pytest-timeout).
    A signal also breaks a blocking open()/read() of a FIFO, so a hang fails the example
    instead of freezing the suite."""
    old = signal.signal(signal.SIGUSR1, _on_watchdog)
    main_id = threading.main_thread().ident
    timer = threading.Timer(seconds, signal.pthread_kill, (main_id, signal.SIGUSR1))
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, old)


@dataclass
class Run:
    code: int
    out: str
    err: str
    took: float

    @property
    def text(self) -> str:
        return self.out + self.err


def cli(argv: list[str], env: dict[str, str]) -> Run:
    out_b, err_b = io.BytesIO(), io.BytesIO()
    # Python's own streams under a UTF-8 locale: stdout strict, stderr backslashreplace.
    out = io.TextIOWrapper(out_b, encoding="utf-8", errors="strict", newline="\n")
    err = io.TextIOWrapper(err_b, encoding="utf-8", errors="backslashreplace", newline="\n")
    t0 = time.monotonic()
    with watchdog(BUDGET + 5):
        code = main(argv, env=env, stdout=out, stderr=err)
    took = time.monotonic() - t0
    out.flush()
    err.flush()
    return Run(code, out_b.getvalue().decode("utf-8", "replace"),
               err_b.getvalue().decode("utf-8", "replace"), took)


def assert_sane(r: Run, allowed: tuple[int, ...] = (0, 1, 2)) -> None:
    """The property: an allowed exit code, a message, no traceback, a verdict in time."""
    assert r.code in allowed, f"exit {r.code}:\n{r.text[-3000:]}"
    assert "Traceback (most recent call last)" not in r.text, r.text[-3000:]
    assert "internal error" not in r.text, r.text[-3000:]
    if r.code == 2:
        assert r.err.strip(), "exit 2 without a message on stderr"
    else:
        assert r.text.strip(), f"exit {r.code} without any output"
    assert r.took < BUDGET, f"took {r.took:.1f} s"


# -- the playground: a tmp dir with a valid profile and every kind of nasty file -------------
@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("zoo")
    (d / "db").mkdir()
    good = deep_merge(BASE_PROFILE, {"name": "good",
                                     "duckdb": {"path": str(d / "db" / "p.duckdb")}})
    files = {"good": d / "good.yaml", "dir": d / "dir.yaml", "missing": d / "missing.yaml",
             "loop": d / "loop.yaml", "loop2": d / "loop2.yaml", "dangling": d / "dangling.yaml",
             "fifo": d / "fifo.yaml", "binary": d / "binary.yaml", "bomb": d / "bomb.yaml",
             "latin1": d / "latin1.yaml", "empty": d / "empty.yaml", "huge": d / "huge.yaml",
             "deep": d / "deep.yaml", "hugeint": d / "hugeint.yaml", "socket": d / "socket.yaml",
             "utf16": d / "utf16.yaml"}
    files["good"].write_text(yaml.safe_dump(good, sort_keys=False))
    files["dir"].mkdir()
    os.symlink(files["loop"], files["loop"])
    os.symlink(d / "loop3.yaml", files["loop2"])
    os.symlink(files["loop2"], d / "loop3.yaml")
    os.symlink(d / "nowhere" / "x.yaml", files["dangling"])
    os.mkfifo(files["fifo"])
    os.mkfifo(d / "db-fifo.duckdb")  # its own: a DuckDB path must not attach to the -p FIFO
    files["dbfifo"] = d / "db-fifo.duckdb"
    files["binary"].write_bytes(bytes(range(256)) * 8)
    files["bomb"].write_text(alias_bomb(10, 9, "description"))
    files["latin1"].write_bytes("name: caf\u00e9\n".encode("latin-1"))
    files["empty"].write_text("# nothing but a comment\n\n")
    with files["huge"].open("wb") as f:
        f.truncate(2 * loader.MAX_BYTES)
    files["deep"].write_text("name: " + "[" * 20_000 + "]" * 20_000 + "\n")
    files["hugeint"].write_text(yaml.safe_dump(good, sort_keys=False).replace(
        "name: good", "name: " + "9" * 5000))
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(files["socket"]))
    files["utf16"].write_bytes(yaml.safe_dump(good).encode("utf-16"))
    files["db"] = d / "db"
    files["root"] = d
    files["work"] = d / "work"  # per-example files, out of `profile list`'s way
    files["work"].mkdir()
    return files


@pytest.fixture(scope="module", autouse=True)
def _cwd(tmp_path_factory):
    """Relative paths a fuzzed profile names (duckdb scratch files) land in a tmp dir."""
    old = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(old)


def base_doc(zoo: dict[str, Path]) -> dict:
    return deep_merge(BASE_PROFILE, {"name": "fuzz",
                                     "duckdb": {"path": str(zoo["db"] / "fuzz.duckdb")}})


def alias_bomb(breadth: int, depth: int, key: str) -> str:
    """The billion-laughs shape: level k is a list of `breadth` aliases of level k-1."""
    lines = [f"{key}:", f"  - &l0 [{', '.join(['lol'] * breadth)}]"]
    lines += [f"  - &l{k} [{', '.join([f'*l{k - 1}'] * breadth)}]" for k in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


def bomb_nodes(breadth: int, depth: int) -> int:
    """Nodes a full expansion visits: what the loader must refuse above MAX_NODES."""
    total, level = 1, 1 + breadth  # the outer list, then level 0
    for _ in range(depth + 1):
        total += level
        level = 1 + breadth * level
    return total


# -- strategies: values built from the real schema, mutated --------------------------------
def schema_fields() -> list[tuple[str, ...]]:
    """Every key path of the profile model: ("name",), ("redis", "url"), ..."""
    out: list[tuple[str, ...]] = []
    for name, f in Profile.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += [(name, sub) for sub in ann.model_fields]
        out.append((name,))
    return out


FIELDS = schema_fields()
SERVICES = list(contract.BY_NAME)
TOKENS = SERVICES + list(contract.CHECK_IDS)

NUMBERS = st.one_of(
    st.integers(), st.integers(min_value=-(10 ** 30), max_value=10 ** 30), st.floats(),
    st.sampled_from([0, -1, 1, 65535, 65536, 2 ** 31, 2 ** 63, 2 ** 64, -0.0, 1e308,
                     float("nan"), float("inf"), float("-inf"), 8080.5]))
LONG = st.builds(lambda s, n: s * n,
                 st.sampled_from(["a", "\u00e9", "\u202e", "\U0001f600", "${", "$", "}", "\\",
                                  "'", '"', " ", "\n", "\t", "#", ": ", "- ", "&a ", "*a "]),
                 st.integers(1000, 20_000))
CONTROL = st.text(st.characters(codec="utf-8", categories=["Cc", "Cf", "Zl", "Zp"]),
                  min_size=1, max_size=12)
SCHEMES = st.sampled_from(["http://", "https://", "redis://", "rediss://", "unix://", "file://",
                           "ftp://", "javascript:", "HTTP://", "", "//", "http:/", "http:///",
                           "h ttp://", "redis+sentinel://", "\u0127ttp://", "http\x00://"])
CREDS = st.sampled_from(["", "user@", "user:pw-1234@", ":pw-1234@", "u:p%zz@", "u:p@w@", "u:@",
                         "@", "u:p/w@", "u:p#w@"])
URL_HOSTS = st.one_of(
    st.sampled_from(["127.0.0.1", "[::1]", "::1", "[::ffff:127.0.0.1]", "[fe80::1%25lo]",
                     "[::1", "::1]", "[not-ipv6]", "0.0.0.0", "256.1.1.1", "x.invalid",
                     "\u00e9.invalid", "xn--zz.invalid", "a" * 300 + ".invalid", "", " ",
                     "h\tst.invalid", "h\nst.invalid", "[" + "1:" * 40 + "1]"]),
    st.text(max_size=20).map(lambda s: s + ".invalid"))
URL_PORTS = st.one_of(st.sampled_from(["", ":", ":0", ":1", ":65535", ":65536", ":-1", ":abc",
                                       ": 1", ":99999999999999999999", ":\u0661\u0662"]),
                      st.integers(-(10 ** 6), 10 ** 6).map(lambda n: f":{n}"))
URL_PATHS = st.one_of(st.sampled_from(["", "/", "/0", "/db?x=1#f", "/%00", "/?token=abcd"]),
                      st.text(max_size=15))
URLS = st.builds(lambda *parts: "".join(parts), SCHEMES, CREDS, URL_HOSTS, URL_PORTS, URL_PATHS)
WORDS = st.sampled_from(["", "~", "null", "Null", "yes", "no", "on", "off", "0x1F", "0o17",
                         "1_000", "1:30", ".nan", ".inf", "2001-13-45", "2001-12-14",
                         "!!python/object", "*alias", "&anchor", "${X}", "${X:?boom}", "$$", "$",
                         "- list", "{a: b}", "[x]", "? q", "key: value", "%YAML", "---", "...",
                         "|", ">", "@", "`", "\ufeff", "\u2028", "\ud7ff", "\U0010ffff"])
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=30), CONTROL, LONG,
                    URLS, WORDS)
VALUES = st.recursive(SCALARS, lambda kids: st.lists(kids, max_size=4)
                      | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=8)
# Fields whose values reach the OS when local checks run: kept where they cannot do harm
# (bind on literal addresses or `.invalid` names, DuckDB files inside the tmp dir).
EXEC_HOSTS = st.one_of(
    st.sampled_from(["127.0.0.1", "0.0.0.0", "::1", "::", "[::1]", "fe80::1%lo", "::ffff:1.2.3.4",
                     "256.1.1.1", "1.2.3.4", "", " ", "localhost", "x.invalid", "\x00",
                     "\u00e9" * 70, "a" * 300, "a..b", "\u00e9.invalid", "h\x7fst.invalid"]),
    st.text(max_size=30).map(lambda s: s + ".invalid"), NUMBERS, st.none(), st.booleans())


def db_paths(zoo: dict[str, Path]):
    db = zoo["db"]
    return st.one_of(
        st.text(st.characters(codec="utf-8", exclude_characters="/"), max_size=300)
        .map(lambda s: str(db / f"f{s}")),
        st.sampled_from([str(db), str(zoo["root"] / "dir.yaml"), "/dev/null",
                         str(db / "a\x00b.duckdb"), str(db / ("a" * 300)), str(db / "x/y/z"),
                         str(db) + "/" + "d/" * 3000 + "x", "~nouser-fuzz/db.duckdb", "",
                         str(zoo["binary"]), str(zoo["dbfifo"]), str(zoo["loop"])]),
        NUMBERS, st.none(), st.booleans(), st.lists(st.text(max_size=3), max_size=2))


def field_values(zoo: dict[str, Path], path: tuple[str, ...]):
    if path == ("execution", "host"):
        return EXEC_HOSTS
    if path == ("duckdb", "path"):
        return db_paths(zoo)
    if path[-1] in ("url", "endpoint", "emulator_host"):
        return st.one_of(URLS, VALUES)
    if path[-1] == "port":
        return st.one_of(NUMBERS, SCALARS)
    return VALUES


@st.composite
def mutated_docs(draw, zoo: dict[str, Path]) -> dict:
    """A profile from the real schema with 0-4 fields replaced, deleted, or keys added."""
    doc = copy.deepcopy(base_doc(zoo))
    for _ in range(draw(st.integers(0, 4))):
        path = draw(st.sampled_from(FIELDS))
        op = draw(st.sampled_from(["set", "set", "set", "delete", "unknown"]))
        parent = doc
        for k in path[:-1]:
            if not isinstance(parent.get(k), dict):
                parent[k] = {}
            parent = parent[k]
        if op == "set":
            parent[path[-1]] = draw(field_values(zoo, path))
        elif op == "delete":
            parent.pop(path[-1], None)
        else:
            parent[draw(st.text(min_size=1, max_size=10))] = draw(SCALARS)
    return doc


KEY_LINE = re.compile(r"^(\s*)([^\s:#][^:]*):( +)(\S.*)?$")
TAGS = st.sampled_from([
    "!!python/object/apply:os.system ['true']", "!!python/name:os.system",
    "!!python/object:argparse.Namespace {}", "!!python/object/new:type [x, [], {}]",
    "!!binary aGVsbG8=", "!!binary ~~~", "!!timestamp 2001-13-45", "!!timestamp 2001-12-14",
    "2001-02-30", "!!int 0x1F", "!!int ten", "!!float nan", "!!float x", "!!bool maybe",
    "!!null ~", "!!str 1", "!!set {a, b}", "!!omap [a: 1]", "!!pairs [a: 1]", "!foo bar",
    "!<tag:example.com,2000:x> y", "!!map {a: 1}", "!!seq [1]", "!!merge <<", "!!value =",
    "!!yaml !", "!!int 99999999999999999999999999999999999999999999999999"])


def _key_lines(lines: list[str]) -> list[int]:
    return [i for i, ln in enumerate(lines) if KEY_LINE.match(ln)]


@st.composite
def text_mutation(draw, text: str) -> bytes:
    """One text- or byte-level damage to a YAML document."""
    lines = text.split("\n")
    keyed = _key_lines(lines) or [0]
    i = draw(st.sampled_from(keyed))
    m = KEY_LINE.match(lines[i])
    indent, key = (m.group(1), m.group(2)) if m else ("", "x")
    op = draw(st.sampled_from(["tag", "anchor", "undefined_alias", "merge", "dup", "deep",
                               "bomb", "hugeint", "bytes", "nul", "bom", "latin1", "control",
                               "truncate", "newlines", "tabs", "multidoc", "directive", "empty",
                               "junk", "utf16"]))
    if op == "tag":
        lines[i] = f"{indent}{key}: {draw(TAGS)}"
    elif op == "anchor":
        j = draw(st.sampled_from(keyed))
        lines[i] = f"{indent}{key}: &a " + (m.group(4) or "" if m else "x")
        mj = KEY_LINE.match(lines[j])
        if mj:
            lines[j] = f"{mj.group(1)}{mj.group(2)}: *a"
    elif op == "undefined_alias":
        lines[i] = f"{indent}{key}: *nope"
    elif op == "merge":
        what = draw(st.sampled_from(["*a", "{x: 1}", "[1]", "1", "[{required: false}]",
                                     "{url: 'http://127.0.0.1:1'}", "*nope", "!!python/none ''"]))
        lines.insert(i, f"{indent}<<: {what}")
    elif op == "dup":
        lines.insert(i, lines[i])
    elif op == "deep":
        n = draw(st.integers(50, 60_000))
        shape = draw(st.sampled_from(["flow_seq", "flow_map", "block_seq"]))
        if shape == "flow_seq":
            lines[i] = f"{indent}{key}: " + "[" * n + "]" * n
        elif shape == "flow_map":
            lines[i] = f"{indent}{key}: " + "{a: " * n + "1" + "}" * n
        else:
            lines[i] = f"{indent}{key}: " + "- " * min(n, 5000) + "x"
    elif op == "bomb":
        lines.append(alias_bomb(draw(st.integers(2, 12)), draw(st.integers(1, 10)),
                                draw(st.sampled_from(["description", "x-bomb", "name"]))))
    elif op == "hugeint":
        lines[i] = f"{indent}{key}: " + draw(st.sampled_from(
            ["9" * draw(st.integers(4000, 6000)), "-" + "1" * 5000, "0x" + "f" * 5000,
             "1e99999", "-.inf", "0b" + "1" * 20000, "1" + "_0" * 3000, "1:" + "59:" * 200 + "1",
             "1." + "0" * 5000 + "1"]))
    elif op == "empty":
        lines[i] = f"{indent}{key}:" + draw(st.sampled_from(["", " ''", ' ""', " ~", " null"]))
    elif op == "junk":
        lines[i] += draw(st.text(st.sampled_from("[]{}:,-?&*!|>'\"%@`#"), min_size=1, max_size=6))
    elif op == "tabs":
        lines = [ln.replace("  ", "\t", 1) for ln in lines]
    elif op == "multidoc":
        lines.append(draw(st.sampled_from(["---", "--- x", "...", "---\nname: other"])))
    elif op == "directive":
        lines.insert(0, draw(st.sampled_from(["%YAML 1.1\n---", "%YAML 2.0\n---", "%YAML 1.1",
                                              "%TAG ! tag:example.com,2000:\n---", "%FOO bar"])))
    text = "\n".join(lines)
    if op == "control":
        pos = draw(st.integers(0, len(text)))
        text = text[:pos] + draw(CONTROL) + text[pos:]
    elif op == "newlines":
        text = text.replace("\n", draw(st.sampled_from(["\r\n", "\r", "\u2028", "\x85"])))
    data = text.encode("utf-8")
    if op == "bytes":
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + draw(st.binary(min_size=1, max_size=8)) + data[pos:]
    elif op == "nul":
        pos = draw(st.integers(0, len(data)))
        data = data[:pos] + b"\x00" + data[pos:]
    elif op == "bom":
        data = b"\xef\xbb\xbf" + data
    elif op == "latin1":
        data = text.encode("latin-1", "replace") + "caf\u00e9".encode("latin-1")
    elif op == "utf16":
        data = text.encode(draw(st.sampled_from(["utf-16", "utf-16-le", "utf-32"])))
    elif op == "truncate":
        data = data[:draw(st.integers(0, len(data)))]
    return data


@st.composite
def profile_files(draw, zoo: dict[str, Path]) -> bytes:
    doc = draw(mutated_docs(zoo))
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=draw(st.booleans()),
                          default_flow_style=draw(st.sampled_from([False, None, True])),
                          width=draw(st.sampled_from([80, 10 ** 9])))
    data = text.encode("utf-8")
    for _ in range(draw(st.integers(0, 3))):
        data = draw(text_mutation(data.decode("utf-8", "replace")))
    return data


# -- (a) profile documents ------------------------------------------------------------------
@settings(FUZZ, max_examples=250, deadline=None)
@given(data=st.data())
def test_fuzzed_profile_documents(zoo, data):
    """Any bytes in a profile file: exit 0 or 2 from lint/show, a message naming the file;
    a profile that loads then runs its local checks with exit 0/1."""
    COUNTS["profile documents"] += 1
    content = data.draw(profile_files(zoo), label="profile")
    path = zoo["work"] / "fuzz.yaml"
    path.write_bytes(content)
    env = clean_env()
    r = cli(["profile", data.draw(st.sampled_from(["lint", "show"])), str(path)], env)
    assert_sane(r, (0, 2))
    if r.code == 2:
        assert "profile error" in r.err and str(path) in r.err, r.err
        return
    fmt = data.draw(st.sampled_from(["json", "table", "junit", "github"]))
    r = cli(["validate", "-p", str(path), "--only", "runtime", "--only", "duckdb",
             "--timeout", "2", "-o", fmt], env)
    assert_sane(r, (0, 1, 2))
    if fmt == "json" and r.code in (0, 1):
        assert json.loads(r.out)["schema"] == "platctl.report/v1"


@settings(FUZZ, max_examples=40, deadline=None)
@given(breadth=st.integers(2, 12), depth=st.integers(1, 9),
       field=st.sampled_from(FIELDS), flow=st.booleans())
def test_alias_bombs_are_refused_as_oversized(zoo, breadth, depth, field, flow):
    """Anchors/aliases that would expand past MAX_NODES are refused (exit 2, 'alias bomb')
    quickly, wherever they sit; smaller alias trees are just wrong values."""
    COUNTS["alias bombs"] += 1
    bomb = alias_bomb(breadth, depth, field[-1])
    if flow:  # the same bomb as one flow sequence
        items = [f"&l0 [{', '.join(['lol'] * breadth)}]"]
        items += [f"&l{k} [{', '.join([f'*l{k - 1}'] * breadth)}]" for k in range(1, depth + 1)]
        bomb = f"{field[-1]}: [{', '.join(items)}]\n"
    rest = {k: v for k, v in base_doc(zoo).items() if k != field[0]}
    text = yaml.safe_dump(rest, sort_keys=False)
    text += bomb if len(field) == 1 else f"{field[0]}:\n" + textwrap.indent(bomb, "  ")
    path = zoo["work"] / "bomb-fuzz.yaml"
    path.write_text(text)
    r = cli(["profile", "lint", str(path)], clean_env())
    assert_sane(r, (2,))
    assert r.took < 2, f"{r.took:.1f} s for an alias bomb"
    nodes = bomb_nodes(breadth, depth)
    if nodes > loader.MAX_NODES:
        assert "alias bomb" in r.err, r.err
    elif nodes < loader.MAX_NODES - 1000:
        assert "alias bomb" not in r.err, r.err


# -- (b) environment values and ${...} substitution ----------------------------------------
ENV_TEXT = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40),
    st.sampled_from(["${V1}", "${V0:-x}", "${DESC}", "${ARANGO_PASSWORD}", "$", "$$", "}", "${",
                     "$${V1}", "a\nb", "\r\n", "\n", "127.0.0.1", "1", "8080", "-1", "65536",
                     "0x1F", "true", "null", "~", "", " ", "#", ": ", "'", '"', "\\", "*a", "&a",
                     "!!python/object:os.system", "redis://127.0.0.1:1/0", "http://127.0.0.1:1",
                     "2001-13-45", "9" * 5000, "\u202e", "\ufeff"]),
    LONG.map(lambda s: s.replace("\x00", "")),
    # os.environ's view of bytes that are not UTF-8 (surrogate escapes)
    st.binary(min_size=1, max_size=12).filter(lambda b: b"\x00" not in b).map(os.fsdecode))
VARS = ("V0", "V1", "V2", "V3")
ARGS = st.one_of(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12),
                 st.sampled_from(["", "x", "127.0.0.1", "8080", "${V2}", "${V3:-z}", "}", "$",
                                  "$$", "${", "need it", "\n", "a:b"]))


@st.composite
def substitution(draw, depth: int = 0) -> str:
    var = draw(st.sampled_from(VARS + ("1BAD", "", "V0.x", "V 1")))
    form = draw(st.sampled_from(["${V}", "${V:-A}", "${V-A}", "${V:?A}", "${V?A}", "${V:+A}",
                                 "${V", "$V", "$$", "${V:-${W}}"]))
    arg = draw(substitution(depth + 1)) if depth < 2 and draw(st.booleans()) else draw(ARGS)
    inner = draw(substitution(depth + 1)) if depth < 2 else "${V0}"
    return form.replace("${W}", inner).replace("V", var, 1).replace("A", arg)


@st.composite
def templates(draw) -> str:
    parts = draw(st.lists(st.one_of(substitution(), ARGS), min_size=1, max_size=4))
    return "".join(parts)


def yaml_scalar(draw, text: str, plain_ok: bool = True) -> str:
    """Double-quoted (escapes everything) or, when it has a chance to parse, plain style."""
    if plain_ok and draw(st.booleans()) and re.fullmatch(r"[\w${}:?\-./@]+", text) \
            and not text.startswith(("-", "?", ":", "@")):
        return text
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted one


@st.composite
def substituted_profiles(draw, zoo: dict[str, Path]) -> tuple[str, dict[str, str]]:
    env = clean_env()
    for var in VARS + ("DESC", "NAME", "RPW", "PORT", "CMD", "PLATFORM_RUNTIME_CMD"):
        state = draw(st.sampled_from(["set", "set", "empty", "unset"]))
        if state == "set":
            env[var] = draw(ENV_TEXT)
        elif state == "empty":
            env[var] = ""
    t = {f: yaml_scalar(draw, draw(templates())) for f in ("name", "database", "command", "port")}
    db = json.dumps(str(zoo["db"] / "sub.duckdb"))
    text = f"""\
name: {t["name"] if draw(st.booleans()) else '"${NAME:-fuzz}"'}
description: {yaml_scalar(draw, "${DESC}") if draw(st.booleans()) else '"${DESC-}"'}
redis:
  url: {yaml_scalar(draw, "redis://u:${RPW:-pw}@127.0.0.1:1/0")}
arango:
  url: "http://127.0.0.1:${{V0:-1}}"
  password: "${{RPW:?set RPW}}"
  database: {t["database"]}
supabase: {{url: "http://127.0.0.1:1"}}
gcs: {{bucket: platform, emulator_host: "http://127.0.0.1:1"}}
meilisearch: {{url: "http://127.0.0.1:1"}}
duckdb: {{path: {db}}}
consul: {{url: "http://127.0.0.1:1"}}
telemetry: {{endpoint: "http://127.0.0.1:1"}}
execution:
  command: {t["command"] if draw(st.booleans()) else '"${CMD:-true}"'}
  port: {t["port"] if draw(st.booleans()) else "${PORT:-8080}"}
  host: "127.0.0.1"
"""
    return text, env


@settings(FUZZ, max_examples=400, deadline=None)
@given(template=templates(), env=st.dictionaries(st.sampled_from(VARS), ENV_TEXT, max_size=4))
def test_expand_returns_text_or_a_substitution_error(template, env):
    """`expand` on any template: a string or SubstitutionError (never another exception,
    never a hang); env values are inserted literally, never expanded again."""
    COUNTS["expand templates"] += 1
    try:
        got = expand(template, env)
    except SubstitutionError as exc:
        assert str(exc)
        return
    assert isinstance(got, str)


@settings(FUZZ, max_examples=300, deadline=None)
@given(value=ENV_TEXT, pre=st.text(st.characters(exclude_characters="$\x00"), max_size=8),
       post=st.text(st.characters(exclude_characters="$\x00"), max_size=8),
       default=st.text(st.characters(exclude_characters="$}\x00"), max_size=8))
def test_env_values_are_inserted_literally(value, pre, post, default):
    """No injection: a value holding `${OTHER}` (say, a secret's name) stays that text."""
    COUNTS["literal env values"] += 1
    env = {"A": value, "SECRET": "s3cret-never"}
    assert expand(f"{pre}${{A}}{post}", env) == pre + value + post
    want = value if value else default
    assert expand(f"{pre}${{A:-{default}}}{post}", env) == pre + want + post
    assert expand(f"${{B:-{default}}}{pre}", env) == default + pre


def test_deeply_nested_defaults_are_an_error_not_a_crash():
    text = "${A:-" * 5000 + "x" + "}" * 5000
    with pytest.raises(SubstitutionError):
        expand(text, {})


@settings(FUZZ, max_examples=200, deadline=None)
@given(data=st.data())
def test_fuzzed_environment_through_the_cli(zoo, data):
    """Profiles full of ${...} forms under random environments: `profile show` exits 0 or 2
    with a message naming the file; when it loads, the description is the env value verbatim
    and the runtime check runs (exit 0/1)."""
    COUNTS["environment values"] += 1
    text, env = data.draw(substituted_profiles(zoo), label="profile+env")
    path = zoo["work"] / "env-fuzz.yaml"
    path.write_text(text)
    r = cli(["profile", "show", str(path)], env)
    assert_sane(r, (0, 2))
    if r.code == 2:
        assert "profile error" in r.err and str(path) in r.err, r.err
        return
    shown = yaml.safe_load(r.out)
    if 'description: "${DESC}"' in text or "description: ${DESC}\n" in text:
        if isinstance(shown["description"], str) and env.get("DESC"):
            assert shown["description"] == env["DESC"]
    r = cli(["validate", "-p", str(path), "--only", "runtime", "--timeout", "2",
             "-o", data.draw(st.sampled_from(["table", "json"]))], env)
    assert_sane(r, (0, 1, 2))


# -- (c) command-line options --------------------------------------------------------------
def profile_refs(zoo: dict[str, Path]):
    paths = [str(zoo[k]) for k in ("good", "dir", "missing", "loop", "loop2", "dangling", "fifo",
                                   "binary", "bomb", "latin1", "empty", "huge", "deep", "hugeint",
                                   "socket", "utf16", "root")]
    return st.one_of(
        st.sampled_from(paths + ["/dev/null", "/dev/zero", "/dev/urandom", "/dev/full", "/",
                                 "/proc/self/mem", "/proc/self/fd", "good", "fifo", "dir", "loop",
                                 "bomb", "", ".", "..", ".hidden", "~", "x" * 300, "x" * 300 +
                                 ".yaml", "a\x00b", "a\x00b.yaml", str(zoo["root"]) + "/../",
                                 "-p", "--", "vm.yaml", "no-such-profile"]),
        st.text(max_size=20))


TIMEOUTS = st.one_of(
    st.floats().map(repr), st.integers().map(str), st.text(max_size=10),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "infinity", "1e400", "-1e400", "0", "-0", "0.1",
                     "0.0999", "2", "3600", "3600.0001", "1e-320", "0x10", "1_0", "  1", "1 ",
                     "", "\u00bd", "\u0661", "2" * 5000]))


@st.composite
def option_sets(draw, zoo: dict[str, Path]) -> list[str]:
    groups: list[list[str]] = []
    if draw(st.booleans()):
        groups.append(["-p", draw(profile_refs(zoo))])
    if draw(st.booleans()):
        groups.append(["--timeout", draw(TIMEOUTS)])
    if draw(st.booleans()):
        groups.append(["-o", draw(st.one_of(st.sampled_from(["table", "json", "junit", "github"]),
                                            st.text(max_size=8)))])
    tokens = st.one_of(st.sampled_from(TOKENS), st.text(max_size=12))
    for opt in ("--only", "--skip"):
        for tok in draw(st.lists(tokens, max_size=3)):
            groups.append([opt, tok])
    for flag in ("--fail-fast", "--keep-going", "--read-only"):
        if draw(st.booleans()):
            groups.append([flag])
    if draw(st.integers(0, 5)) == 0:
        groups.append([draw(st.sampled_from(["--bogus", "-x", "--", "extra", "--only", "-p",
                                             "--timeout", "-o", "--version"]))])
    return [a for g in draw(st.permutations(groups)) for a in g]


@settings(FUZZ, max_examples=250, deadline=None)
@given(data=st.data())
def test_fuzzed_command_lines(zoo, data):
    """Random options and profile references (directories, missing files, symlink loops,
    devices, a FIFO with no writer, junk): exit 0/1/2 with a message, promptly."""
    COUNTS["command lines"] += 1
    env = clean_env(PLATCTL_PROFILE_DIR=str(zoo["root"]))
    if data.draw(st.integers(0, 4)) == 0:
        env["PLATCTL_PROFILE"] = data.draw(profile_refs(zoo))
    command = data.draw(st.sampled_from(["validate"] * 6 + ["lint", "show", "diff", "list",
                                                             "contract"]))
    if command == "validate":
        argv = ["validate", *data.draw(option_sets(zoo))]
    elif command == "diff":
        argv = ["profile", "diff", data.draw(profile_refs(zoo)), data.draw(profile_refs(zoo))]
    elif command == "list":
        argv = ["profile", "list"]
    elif command == "contract":
        argv = ["contract", "-o", data.draw(st.sampled_from(["table", "json", "xml", ""]))]
    else:
        argv = ["profile", command, data.draw(profile_refs(zoo))]
    r = cli(argv, env)
    assert_sane(r, (0, 1, 2))
    if r.code in (0, 1) and argv[0] == "validate" and "--version" not in argv:
        fmt = argv[argv.index("-o") + 1] if "-o" in argv else "table"
        if fmt == "json":
            assert json.loads(r.out)["schema"] == "platctl.report/v1"
        elif fmt == "junit":
            ET.fromstring(r.out)


# -- specific regressions found by the properties above --------------------------------------
@pytest.mark.parametrize("argv,words", [
    (["validate", "-p", "a\x00b.yaml"], "NUL"),
    (["profile", "lint", "\x00"], "NUL"),
    (["validate", "-p", "x" * 300], "unknown profile"),
    (["validate", "-p", ""], "invalid profile name"),
])
def test_unusable_profile_references_exit_2(argv, words):
    r = cli(argv, clean_env())
    assert_sane(r, (2,))
    assert words in r.err


@pytest.mark.parametrize("content,words", [
    ("name: " + "[" * 2000 + "]" * 2000, "nested too deeply"),
    ("a: &a [*a]\n", "nested too deeply"),
    ("name: " + "9" * 5000, "invalid YAML"),
    ("name: 2001-13-45", "invalid YAML"),
    ("description: \"nul \\0 inside\"", "NUL"),
])
def test_pathological_yaml_is_a_profile_error(zoo, content, words):
    path = zoo["work"] / "regression.yaml"
    doc = base_doc(zoo)
    key = content.split(":")[0]
    doc.pop(key, None)
    path.write_text(yaml.safe_dump(doc, sort_keys=False) + content + "\n")
    r = cli(["profile", "lint", str(path)], clean_env())
    assert_sane(r, (2,))
    assert words in r.err, r.err


@pytest.mark.parametrize("execution,duckdb,code", [
    ({"host": "\u00e9" * 70, "port": 8080}, None, 1),  # IDNA cannot encode it: TypeError
    ({"host": "h\x00st", "port": 8080}, None, 2),  # bind(): TypeError
    ({"host": "a\udcffb", "port": 8080}, None, 2),  # a "\udcff" escape: a lone surrogate
    (None, "~nouser-fuzz/db.duckdb", 1),  # expanduser: RuntimeError
    (None, "/tmp/" + "d/" * 3000 + "x.duckdb", 1),  # ENAMETOOLONG
    (None, "/tmp/" + "a" * 300, 1),
    (None, "/tmp/a\x00b.duckdb", 2),  # exists() says False: it passed as "can be created"
])
def test_odd_local_values_fail_their_check_not_the_cli(zoo, execution, duckdb, code):
    over = {"execution": execution} if execution else {"duckdb": {"path": duckdb}}
    path = zoo["work"] / "local.yaml"
    path.write_text(yaml.safe_dump(deep_merge(base_doc(zoo), over), allow_unicode=True))
    r = cli(["validate", "-p", str(path), "--only", "runtime", "--only", "duckdb"], clean_env())
    assert_sane(r, (code,))


def test_a_fifo_as_the_duckdb_path_fails_at_once(zoo):
    """DuckDB would block forever opening a FIFO: refused by the path check instead."""
    path = zoo["work"] / "local.yaml"
    path.write_text(yaml.safe_dump(deep_merge(base_doc(zoo),
                                              {"duckdb": {"path": str(zoo["dbfifo"])}})))
    r = cli(["validate", "-p", str(path), "--only", "duckdb", "--timeout", "2"], clean_env())
    assert_sane(r, (1,))
    assert "not a regular file" in r.out and r.took < 1.5


def test_undecodable_environment_bytes_still_give_a_json_report(zoo):
    """PLATFORM_RUNTIME_CMD from bytes that are not UTF-8 (os.environ keeps them as lone
    surrogates): the report quotes it escaped, so JSON and a strict UTF-8 stdout carry it."""
    env = clean_env(PLATFORM_RUNTIME_CMD=os.fsdecode(b"/opt/caf\xe9/run"))
    r = cli(["validate", "-p", str(zoo["good"]), "--only", "runtime", "-o", "json"], env)
    assert_sane(r, (1,))
    check = json.loads(r.out)["checks"][0]
    assert check["id"] == "runtime.command" and "caf\\udce9" in check["message"]


def test_a_fifo_with_a_silent_writer_times_out(zoo, monkeypatch, tmp_path):
    """A writer that holds the FIFO open and never writes: a bounded wait, then exit 2."""
    monkeypatch.setattr(loader, "READ_DEADLINE", 0.5)
    fifo = tmp_path / "silent.yaml"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)  # keeps a writer attached without blocking
    try:
        r = cli(["profile", "lint", str(fifo)], clean_env())
    finally:
        os.close(fd)
    assert_sane(r, (2,))
    assert "nothing to read" in r.err and r.took < 2


# -- end to end: the installed console script -------------------------------------------
@pytest.mark.parametrize("which,words", [
    ("dir", "is a directory"), ("loop", "cannot read"), ("loop2", "cannot read"),
    ("binary", "binary data"), ("bomb", "alias bomb"), ("fifo", "empty profile"),
    ("deep", "nested too deeply"), ("hugeint", "invalid YAML"), ("latin1", "not UTF-8"),
    ("huge", "larger than"), ("socket", "cannot read"),
])
def test_nasty_profiles_exit_2_end_to_end(zoo, which, words):
    t0 = time.monotonic()
    proc = platctl("validate", "-p", str(zoo[which]), "--only", "runtime", timeout=30)
    took = time.monotonic() - t0
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and words in proc.stderr, proc.stderr
    assert took < 10


def test_profile_list_does_not_block_on_a_fifo_end_to_end(zoo):
    proc = platctl("profile", "list", env=clean_env(PLATCTL_PROFILE_DIR=str(zoo["root"])),
                   timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert "good" in proc.stdout and "fifo" in proc.stdout


def test_a_profile_from_a_pipe_still_loads(zoo):
    """Non-blocking reads must not break `-p <(sops -d profile.yaml)`: a pipe with a writer."""
    script = f'"{PLATCTL}" profile lint <(sleep 0.3; cat "{zoo["good"]}")'
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                          env=clean_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "valid profile" in proc.stdout


# -- the numbers the issue asks for ------------------------------------------------------
def test_zz_print_example_counts(capsys):
    with capsys.disabled():
        total = sum(COUNTS.values())
        print(f"\nhypothesis examples executed ({total} total):")
        for name, n in COUNTS.items():
            print(f"  {name:<22} {n}")
