"""The emulator's CommonSecurityLog table, kept in SQLite.

One file holds every row the emulator accepted, so ``cefpipe query`` (another
process) can read them while the emulator keeps writing: the database runs in
WAL mode, where readers never block the writer. Each upload's rows go in with
one transaction, so a reader sees all of an upload or none of it.

Besides the table's columns each row carries two bookkeeping columns, in the
spirit of Log Analytics' hidden ones: ``_IngestionTime`` (when the emulator
accepted it, ISO 8601 UTC) and ``_RequestId`` (the ``x-ms-request-id`` of its
upload). ``_Seq`` numbers rows in the order they were stored.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, Final

from cefpipe.schema import TABLE_COLUMNS, TABLE_NAME, ColumnType

logger = logging.getLogger(__name__)

INGESTION_TIME: Final = "_IngestionTime"
REQUEST_ID: Final = "_RequestId"
SEQUENCE: Final = "_Seq"

_SQL_TYPES: Final = {
    ColumnType.STRING: "TEXT",
    ColumnType.INT: "INTEGER",
    ColumnType.LONG: "INTEGER",
    ColumnType.REAL: "REAL",
    ColumnType.DATETIME: "TEXT",
}
_BUSY_TIMEOUT_MS: Final = 5000


def _quote(name: str) -> str:
    return f'"{name}"'


# Every name in these statements comes from the schema module, never a request.
_STORED_NAMES: Final = (INGESTION_TIME, REQUEST_ID, *TABLE_COLUMNS)
_INSERT_SQL: Final = (
    f"INSERT INTO {TABLE_NAME} ({', '.join(map(_quote, _STORED_NAMES))}) "  # noqa: S608
    f"VALUES ({', '.join('?' for _ in _STORED_NAMES)})"
)
_SELECT_SQL: Final = f"SELECT * FROM {TABLE_NAME} ORDER BY {_quote(SEQUENCE)} DESC"  # noqa: S608
_DELETE_SQL: Final = f"DELETE FROM {TABLE_NAME}"  # noqa: S608

Row = dict[str, Any]


class Store:
    """Write access to the table, for the emulator process.

    Thread-safe: one connection guarded by a lock, so handlers may hand inserts
    to worker threads. ``close`` is idempotent.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        _create_table(self._db)

    def insert(
        self, rows: Sequence[Mapping[str, Any]], *, request_id: str, ingested_at: str
    ) -> int:
        """Store the table columns of ``rows`` in one transaction; other keys
        are ignored. Returns the number of rows stored."""
        values = [
            (ingested_at, request_id, *(row.get(column) for column in TABLE_COLUMNS))
            for row in rows
        ]
        with self._lock, self._db:
            self._db.executemany(_INSERT_SQL, values)
        return len(values)

    def rows(self, limit: int | None = None) -> list[Row]:
        """Stored rows, newest first, each with its non-null columns only."""
        with self._lock:
            return _select(self._db, limit)

    def clear(self) -> None:
        with self._lock, self._db:
            self._db.execute(_DELETE_SQL)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def read_rows(path: Path) -> list[Row]:
    """Every stored row, newest first, read without writing anything.

    For ``cefpipe query``: works whether or not the emulator runs. A store that
    does not exist yet (or has no table yet) holds no rows.
    """
    if not path.exists():
        return []
    try:
        with _read_only(path) as db:
            return _select(db, None)
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise


@contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True)) as db:
        db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        yield db


def _create_table(db: sqlite3.Connection) -> None:
    """Create the table, or add columns the schema gained since it was made."""
    columns = [
        f"{_quote(SEQUENCE)} INTEGER PRIMARY KEY AUTOINCREMENT",
        f"{_quote(INGESTION_TIME)} TEXT NOT NULL",
        f"{_quote(REQUEST_ID)} TEXT NOT NULL",
        *(f"{_quote(name)} {_SQL_TYPES[kind]}" for name, kind in TABLE_COLUMNS.items()),
    ]
    with db:
        db.execute(f"CREATE TABLE IF NOT EXISTS {TABLE_NAME} ({', '.join(columns)})")
        present = {info[1] for info in db.execute(f"PRAGMA table_info({TABLE_NAME})")}
        for name, kind in TABLE_COLUMNS.items():
            if name not in present:
                db.execute(
                    f"ALTER TABLE {TABLE_NAME} ADD COLUMN {_quote(name)} "
                    f"{_SQL_TYPES[kind]}"
                )
                logger.info("added column %s to the stored table", name)


def _select(db: sqlite3.Connection, limit: int | None) -> list[Row]:
    statement = _SELECT_SQL
    parameters: tuple[int, ...] = ()
    if limit is not None:
        statement += " LIMIT ?"
        parameters = (limit,)
    cursor = db.execute(statement, parameters)
    names = [description[0] for description in cursor.description]
    return [
        {
            name: value
            for name, value in zip(names, record, strict=True)
            if value is not None
        }
        for record in cursor
    ]
