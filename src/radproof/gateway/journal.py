"""The journal: the state of every instance the gateway accepted, and each change of state.

SQLite in WAL mode with ``synchronous=FULL``: a transition is on disk when :meth:`Journal.move` returns.
States, in the order an instance passes them::

    received -> queued -> forwarding -> forwarded
             -> quarantined (-> released -> queued ..., or -> deleted)
             -> rejected

``forwarding`` is written before an instance is sent and ``forwarded`` after the archive confirmed
it: an instance found in ``forwarding`` after a crash may or may not have arrived, and the
forwarder asks the archive before sending it again (docs/gateway.md, "Exactly once").
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydicom.dataset import Dataset


class State(StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"
    FORWARDING = "forwarding"
    FORWARDED = "forwarded"
    QUARANTINED = "quarantined"
    REJECTED = "rejected"
    RELEASED = "released"
    DELETED = "deleted"


_SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    sop_instance_uid TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    sop_class_uid TEXT NOT NULL,
    study_uid TEXT NOT NULL,
    series_uid TEXT NOT NULL,
    calling_ae TEXT NOT NULL,
    path TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    state TEXT NOT NULL,
    verdict TEXT,
    action TEXT,
    reason TEXT,
    received_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    PRIMARY KEY (sop_instance_uid, sha256)
);
CREATE INDEX IF NOT EXISTS by_state ON instances (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sop_instance_uid TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    at REAL NOT NULL,
    state TEXT NOT NULL,
    detail TEXT
);
"""


@dataclass(frozen=True)
class Entry:
    """One row of the journal."""

    sop_instance_uid: str
    sha256: str
    sop_class_uid: str
    study_uid: str
    series_uid: str
    calling_ae: str
    path: str
    bytes: int
    state: State
    verdict: str | None
    action: str | None
    reason: str | None
    received_at: float
    updated_at: float
    attempts: int
    next_attempt_at: float
    last_error: str | None

    @property
    def key(self) -> tuple[str, str]:
        return self.sop_instance_uid, self.sha256


class Journal:
    """The gateway's journal in one SQLite file (safe to share between the gateway's threads)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def received(
        self,
        *,
        sop_instance_uid: str,
        sha256: str,
        sop_class_uid: str,
        study_uid: str,
        series_uid: str,
        calling_ae: str,
        path: Path,
        size: int,
    ) -> None:
        """Record an instance written to the spool (replacing an unfinished record of the same bytes)."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO instances (sop_instance_uid, sha256, sop_class_uid, study_uid, series_uid,"
                " calling_ae, path, bytes, state, received_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (sop_instance_uid, sha256, sop_class_uid, study_uid, series_uid, calling_ae, str(path), size,
                 State.RECEIVED, now, now),
            )  # fmt: skip
            self._transition(db, (sop_instance_uid, sha256), State.RECEIVED, f"from {calling_ae}", now)

    def received_instance(self, ds: Dataset, *, sha256: str, calling_ae: str, path: Path, size: int) -> None:
        """:meth:`received`, with the UIDs taken from the instance's data set."""
        self.received(
            sop_instance_uid=str(ds.SOPInstanceUID).strip(),
            sha256=sha256,
            sop_class_uid=str(ds.SOPClassUID),
            study_uid=str(ds.get("StudyInstanceUID", "")),
            series_uid=str(ds.get("SeriesInstanceUID", "")),
            calling_ae=calling_ae,
            path=path,
            size=size,
        )

    def move(
        self,
        key: tuple[str, str],
        state: State,
        detail: str | None = None,
        *,
        path: Path | None = None,
        verdict: str | None = None,
        action: str | None = None,
        reason: str | None = None,
        error: str | None = None,
        retry_at: float | None = None,
    ) -> None:
        """Change an instance's state (and what goes with it), durably, with a transition record."""
        now = time.time()
        sets = ["state = ?", "updated_at = ?"]
        values: list[object] = [str(state), now]
        for column, value in (("path", path), ("verdict", verdict), ("action", action), ("reason", reason)):
            if value is not None:
                sets.append(f"{column} = ?")
                values.append(str(value))
        if error is not None:
            sets += ["last_error = ?", "attempts = attempts + 1"]
            values.append(error)
        if retry_at is not None:
            sets.append("next_attempt_at = ?")
            values.append(retry_at)
        with self._tx() as db:
            changed = db.execute(
                f"UPDATE instances SET {', '.join(sets)} WHERE sop_instance_uid = ? AND sha256 = ?",  # noqa: S608
                (*values, *key),
            ).rowcount
            if changed != 1:
                raise KeyError(f"no journal entry for {key[0]}")
            self._transition(db, key, state, detail or error, now)

    def _transition(
        self, db: sqlite3.Connection, key: tuple[str, str], state: State, detail: str | None, at: float
    ) -> None:
        db.execute(
            "INSERT INTO transitions (sop_instance_uid, sha256, at, state, detail) VALUES (?,?,?,?,?)",
            (*key, at, str(state), detail),
        )

    def get(self, key: tuple[str, str]) -> Entry | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM instances WHERE sop_instance_uid = ? AND sha256 = ?", key).fetchone()
        return _entry(row) if row is not None else None

    def find(self, sop_instance_uid: str) -> list[Entry]:
        """Every entry for this SOP Instance UID (several when different bytes came under one UID)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM instances WHERE sop_instance_uid = ? ORDER BY received_at", (sop_instance_uid,)
            ).fetchall()
        return [_entry(r) for r in rows]

    def in_state(self, *states: State) -> list[Entry]:
        marks = ",".join("?" for _ in states)
        with self._lock:
            rows = self._db.execute(
                f"SELECT * FROM instances WHERE state IN ({marks}) ORDER BY received_at",  # noqa: S608
                [str(s) for s in states],
            ).fetchall()
        return [_entry(r) for r in rows]

    def next_due(self, now: float) -> Entry | None:
        """The oldest queued instance whose retry time has come."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM instances WHERE state = ? AND next_attempt_at <= ? ORDER BY received_at LIMIT 1",
                (str(State.QUEUED), now),
            ).fetchone()
        return _entry(row) if row is not None else None

    def claim_next(self, now: float, detail: str) -> Entry | None:
        """Take the oldest due queued instance for sending: it is ``forwarding`` when this returns, so
        that two forwarder threads never send the same instance."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM instances WHERE state = ? AND next_attempt_at <= ? ORDER BY received_at LIMIT 1",
                (str(State.QUEUED), now),
            ).fetchone()
            if row is None:
                return None
            key = (row["sop_instance_uid"], row["sha256"])
            db.execute(
                "UPDATE instances SET state = ?, updated_at = ? WHERE sop_instance_uid = ? AND sha256 = ?",
                (str(State.FORWARDING), now, *key),
            )
            self._transition(db, key, State.FORWARDING, detail, now)
        return _entry({**dict(row), "state": State.FORWARDING})

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM instances GROUP BY state").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def last_errors(self, limit: int = 5) -> list[tuple[float, str, str]]:
        """(time, SOP Instance UID, error) of the latest failed attempts."""
        with self._lock:
            rows = self._db.execute(
                "SELECT updated_at, sop_instance_uid, last_error FROM instances WHERE last_error IS NOT NULL"
                " ORDER BY updated_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [(float(r[0]), str(r[1]), str(r[2])) for r in rows]

    def transitions(self, key: tuple[str, str]) -> list[tuple[float, str, str | None]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT at, state, detail FROM transitions WHERE sop_instance_uid = ? AND sha256 = ? ORDER BY id",
                key,
            ).fetchall()
        return [(float(r[0]), str(r[1]), r[2]) for r in rows]


def _entry(row: sqlite3.Row | dict[str, object]) -> Entry:
    values = dict(row)
    values["state"] = State(values["state"])
    return Entry(**values)
