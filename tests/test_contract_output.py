"""`platctl contract` as a table: plain aligned columns when stdout is not a terminal (no rich
import, lines within COLUMNS, every contract name whole), Rich's table on a terminal or when
colour is forced, and `-o json` as before."""
from __future__ import annotations

import io
import json
import subprocess

import pytest

from platctl import contract
from platctl.__main__ import main
from platctl.render.plain import render_plain_table
from tests.support import Terminal, clean_env
from tests.test_startup import imports, loaded

RICH_TABLE = ("rich.console", "rich.table")
CHECK_IDS = [c for s in contract.SERVICES for c in s.check_ids]
NAMES = [*contract.PLANES, *(s.name for s in contract.SERVICES),
         *(k for s in contract.SERVICES for k in s.env_keys), *CHECK_IDS]


def env(**extra: str) -> dict[str, str]:
    """A clean environment where only what the test sets decides colour and width."""
    e = clean_env(**extra)
    for key in ("FORCE_COLOR", "NO_COLOR", "TERM", "COLUMNS"):
        if key not in extra:
            e.pop(key, None)
    return e


def contract_text(columns: int | None, **extra: str) -> str:
    """In-process, to a StringIO (not a terminal)."""
    out, err = io.StringIO(), io.StringIO()
    e = env(**extra) if columns is None else env(COLUMNS=str(columns), **extra)
    assert main(["contract"], env=e, stdout=out, stderr=err) == 0, err.getvalue()
    return out.getvalue()


@pytest.mark.parametrize("columns", [None, "100", "90", "160"])
def test_piped_contract_is_plain_names_every_thing_whole_and_loads_no_rich_table(columns):
    extra = {} if columns is None else {"COLUMNS": columns}
    proc, names = imports("contract", env=env(**extra))
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert loaded(names, *RICH_TABLE) == []
    text = proc.stdout
    assert "\x1b[" not in text and text.startswith("platform contract (every service is required)")
    words = set(text.split())
    assert [n for n in NAMES if n not in words] == []  # every name a whole word, none folded
    width = int(columns or 100)  # io.Streams.width: 100 when not a terminal
    assert max(len(line) for line in text.splitlines()) <= width
    assert all(line == line.rstrip() for line in text.splitlines())


@pytest.mark.parametrize("columns", [40, 50, 60, 72, 80, 87, 100, 120, 200])
def test_plain_lines_fit_columns_and_check_ids_wrap_only_at_spaces(columns):
    text = contract_text(columns)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= columns, text
    if columns >= 60:  # below that, five columns leave too little room for any whole id
        words = set(text.split())
        assert [c for c in CHECK_IDS if c not in words] == [], text


@pytest.mark.parametrize("columns", [60, 80, 100, 200])
def test_plain_columns_are_aligned(columns):
    lines = contract_text(columns).splitlines()
    header = lines[1]
    assert header.split() == ["plane", "service", "purpose", "env", "keys", "checks"]
    at = header.index("checks")
    rows = lines[2:]
    # Each service's first line starts with its plane and name; every check id sits in the
    # checks column, the first of a line at the column's start.
    starts = [line.split()[:2] for line in rows if not line.startswith(" ")]
    assert [p for p, _ in starts] == [s.plane for s in contract.SERVICES]
    if columns >= 72:  # narrower, the columns share the folding, service names included
        assert [n for _, n in starts] == [s.name for s in contract.SERVICES]
    seen = []
    for line in rows:
        ids = [w for w in line[at:].split() if w in CHECK_IDS]
        if ids:
            assert line[at:].startswith(ids[0]) and line[at - 1] == " ", line
        seen += ids
    assert seen == CHECK_IDS


def test_plain_env_keys_fold_after_an_underscore_when_too_wide():
    text = contract_text(80)
    assert "OTEL_EXPORTER_OTLP_" in text.split() and "ENDPOINT" in text.split()


def test_forced_colour_when_piped_keeps_the_rich_table():
    proc, names = imports("contract", env=env(FORCE_COLOR="1", COLUMNS="100"))
    assert proc.returncode == 0 and "redis.ping" in proc.stdout, proc.stderr[-2000:]
    assert loaded(names, *RICH_TABLE) == list(RICH_TABLE)


def test_on_a_terminal_contract_is_richs_table():
    with Terminal() as term:
        proc, names = imports("contract", env=env(COLUMNS="100", TERM="xterm"),
                              stdin=subprocess.DEVNULL, stdout=term.fd)
    shown = term.text()
    assert proc.returncode == 0 and "redis.ping" in shown, shown
    assert loaded(names, *RICH_TABLE) == list(RICH_TABLE)


def test_json_output_is_unchanged_and_needs_no_rich_table():
    proc, names = imports("contract", "-o", "json", env=env(COLUMNS="40"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert loaded(names, *RICH_TABLE) == []
    assert json.loads(proc.stdout) == {
        "planes": list(contract.PLANES),
        "services": [{"service": s.name, "plane": s.plane, "purpose": s.purpose,
                      "env_keys": list(s.env_keys),
                      "checks": [{"id": c.id, "summary": c.summary} for c in s.checks]}
                     for s in contract.SERVICES]}
    assert proc.stdout.startswith('{\n  "planes": [')  # indent=2, as before


# The renderer alone: rows in, text out.

def test_renderer_uses_natural_widths_when_they_fit():
    text = render_plain_table(("a", "bb"), [("x", "long cell"), ("yyy", "z")], width=40,
                              title="t")
    assert text == "t\na    bb\nx    long cell\nyyy  z\n"


def test_renderer_wraps_at_spaces_and_shares_spare_room_by_need():
    text = render_plain_table(("k", "v"), [("key", "one two three four five six")], width=14)
    assert text.splitlines() == ["k    v", "key  one two", "     three", "     four five",
                                 "     six"]


def test_renderer_folds_whole_columns_last_and_then_at_separators():
    rows = [("alpha beta", "svc.check_one svc.check_two")]
    text = render_plain_table(("x", "ids"), rows, width=17, whole=(1,))
    assert max(map(len, text.splitlines())) <= 17
    assert {"svc.check_one", "svc.check_two"} <= set(text.split())
    assert "alpha" not in text  # the other column gave way
    folded = render_plain_table(("x",), [("ABC_DEFGHIJ",)], width=6)
    assert folded.splitlines() == ["x", "ABC_", "DEFGHI", "J"]


def test_renderer_rejects_ragged_rows():
    with pytest.raises(ValueError):
        render_plain_table(("a", "b"), [("only one",)])
