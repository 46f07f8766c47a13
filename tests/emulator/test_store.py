"""The SQLite store: one transaction per upload, readable from another process."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

from emulator.store import Store, read_rows


def test_insert_keeps_table_columns_only_and_reads_back_newest_first(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "deep" / "sentinel.db")
    store.insert(
        [{"SourceIP": "192.0.2.1", "Rule": "xss"}, {"SourceIP": "192.0.2.2"}],
        request_id="r-1",
        ingested_at="2024-03-14T09:00:00Z",
    )

    rows = store.rows()
    store.close()

    assert [row["SourceIP"] for row in rows] == ["192.0.2.2", "192.0.2.1"]
    assert rows[0]["_RequestId"] == "r-1"
    assert "Rule" not in rows[1]
    assert read_rows(tmp_path / "deep" / "sentinel.db") == rows


def test_store_runs_in_wal_mode(tmp_path: Path) -> None:
    Store(tmp_path / "s.db").close()

    with sqlite3.connect(tmp_path / "s.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_missing_store_reads_as_no_rows(tmp_path: Path) -> None:
    assert read_rows(tmp_path / "nothing-here.db") == []


def test_file_without_the_table_reads_as_no_rows(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / "empty.db").close()

    assert read_rows(tmp_path / "empty.db") == []


def test_another_process_reads_while_the_store_is_open(tmp_path: Path) -> None:
    """The writer holds its connection open, as the running emulator does."""
    path = tmp_path / "s.db"
    store = Store(path)
    store.insert([{"SourceIP": "192.0.2.1"}], request_id="r", ingested_at="t")

    reader = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from emulator.store import "
            "read_rows; print(len(read_rows(Path(sys.argv[1]))))",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    store.insert([{"SourceIP": "192.0.2.2"}], request_id="r", ingested_at="t")
    store.close()

    assert reader.stdout.strip() == "1"


def test_an_older_store_gains_new_schema_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            'CREATE TABLE CommonSecurityLog ("_Seq" INTEGER PRIMARY KEY AUTOINCREMENT,'
            ' "_IngestionTime" TEXT NOT NULL, "_RequestId" TEXT NOT NULL,'
            ' "SourceIP" TEXT)'
        )

    store = Store(path)
    store.insert(
        [{"SourceIP": "a", "RequestURL": "/x"}], request_id="r", ingested_at="t"
    )
    store.close()

    assert read_rows(path)[0]["RequestURL"] == "/x"


def test_clear_removes_every_row(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.db")
    store.insert([{"SourceIP": "a"}], request_id="r", ingested_at="t")

    store.clear()

    assert store.rows() == []
    store.close()
