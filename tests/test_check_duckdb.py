"""DuckDB checks on real files in temporary directories, and a real lock held by another
process."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.support import by_id, run_report, write_profile


def duck_report(tmp_path, path, read_only=False, **opts):
    profile = write_profile(tmp_path, duckdb={"path": str(path), "read_only": read_only})
    return by_id(run_report(profile, only=("duckdb",), timeout=opts.pop("timeout", 5), **opts))


def make_db(path):
    import duckdb
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE state (id INTEGER)")
    con.close()


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_file_is_proven_creatable_and_nothing_is_left(tmp_path):
    target = tmp_path / "data" / "platform.duckdb"
    r = duck_report(tmp_path, target)
    assert [r[i].status.value for i in ("duckdb.path", "duckdb.open", "duckdb.schema")] == \
        ["pass"] * 3
    assert "can create it" in r["duckdb.path"].message
    assert not (tmp_path / "data").exists()  # no directory, database or scratch file left
    assert [p.name for p in tmp_path.iterdir()] == ["test.yaml"]


def test_existing_database_passes_and_the_schema_probe_is_rolled_back(tmp_path):
    db = tmp_path / "p.duckdb"
    make_db(db)
    r = duck_report(tmp_path, db)
    assert all(c.status.value == "pass" for c in r.values()), r
    import duckdb
    con = duckdb.connect(str(db), read_only=True)
    schemas = {row[0] for row in con.execute("SELECT schema_name FROM information_schema.schemata").fetchall()}
    con.close()
    assert not any(s.startswith("platctl") for s in schemas)


def test_read_only_requires_an_existing_file(tmp_path):
    r = duck_report(tmp_path, tmp_path / "missing.duckdb", read_only=True)
    path = r["duckdb.path"]
    assert (path.status.value, path.reason.value) == ("fail", "missing")
    assert "read_only needs an existing database" in path.message
    assert "DUCKDB_READ_ONLY" in path.hint and "DUCKDB_DATABASE_PATH" in path.hint


def test_lock_held_by_another_process_names_the_holder_without_hanging(tmp_path):
    db = tmp_path / "locked.duckdb"
    make_db(db)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import duckdb, sys, time\n"
        f"c = duckdb.connect({str(db)!r})\n"
        "print('locked', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        r = duck_report(tmp_path, db, timeout=2)
        elapsed = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    opened = r["duckdb.open"]
    assert (opened.status.value, opened.reason.value) == ("fail", "unavailable")
    assert f"(PID {holder.pid})" in opened.message and "locked by another process" in opened.message
    assert elapsed < 2.0


@pytest.mark.parametrize("content", [b"just some text\n", b""])
def test_a_file_that_is_not_duckdb(tmp_path, content):
    bogus = tmp_path / "bogus.duckdb"
    bogus.write_bytes(content)
    opened = duck_report(tmp_path, bogus)["duckdb.open"]
    assert opened.reason.value == "unexpected" and "is not a DuckDB database" in opened.message


def test_a_sqlite_file_fails_fast_without_downloading_extensions(tmp_path):
    lite = tmp_path / "lite.db"
    sqlite3.connect(lite).execute("CREATE TABLE t (x)").connection.close()
    t0 = time.monotonic()
    opened = duck_report(tmp_path, lite, timeout=5)["duckdb.open"]
    assert opened.status.value == "fail" and opened.reason.value == "unexpected"
    assert time.monotonic() - t0 < 3


def test_a_directory_is_not_a_database(tmp_path):
    path = duck_report(tmp_path, tmp_path)["duckdb.path"]
    assert path.reason.value == "config" and "is a directory" in path.message


def test_parent_that_is_a_file_cannot_hold_the_database(tmp_path):
    # (Permission bits cannot be tested here: CI runs as root, which writes anywhere.)
    (tmp_path / "afile").write_text("x")
    path = duck_report(tmp_path, tmp_path / "afile" / "p.duckdb")["duckdb.path"]
    assert path.reason.value == "forbidden" and "cannot be created" in path.message


def test_read_only_run_opens_read_only_and_changes_nothing(tmp_path):
    db = tmp_path / "p.duckdb"
    make_db(db)
    before = (digest(db), os.stat(db).st_mtime_ns)
    r = by_id(run_report(write_profile(tmp_path, duckdb={"path": str(db)}), only=("duckdb",),
                         read_only=True))
    assert "read-only" in r["duckdb.open"].message
    assert r["duckdb.schema"].status.value == "skip"
    assert (digest(db), os.stat(db).st_mtime_ns) == before
    assert not (tmp_path / "p.duckdb.wal").exists()


def test_read_only_run_with_no_file_creates_nothing(tmp_path):
    target = tmp_path / "new" / "p.duckdb"
    r = by_id(run_report(write_profile(tmp_path, duckdb={"path": str(target)}),
                         only=("duckdb",), read_only=True))
    assert r["duckdb.open"].status.value == "skip"
    assert not (tmp_path / "new").exists()
