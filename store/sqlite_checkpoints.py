"""SQLite's WAL checkpoints on a thread of their own, so that the event loop seldom waits for one.

Why: our SQLite statements run on the event loop's thread (store/sqlite_inline.py). By default
the commit that takes the write-ahead log past 1 000 pages also copies them into the database
file and syncs it, milliseconds during which no request of the bot moves: here an ask writes
about 20 pages, so one ask in fifty paid for it (bench/overhead.py's p99: 8-10 ms against a p50
of 2). Here a thread copies what the log holds every `INTERVAL` seconds (a PASSIVE checkpoint:
it never blocks a reader or a writer, and the sqlite3 module lets go of the GIL meanwhile), and
the commits' own checkpoint only comes at `AUTOCHECKPOINT_PAGES`. That one stays, as the bound on
the log: a checkpoint running beside writers seldom finishes while they keep writing, and only a
finished one lets the next writer start the log over. It comes after the thread has copied
nearly everything, so it is short; and without the thread (a tool that opens the file for a
moment) the log still cannot grow past about 40 MB. See https://www.sqlite.org/wal.html#ckpt
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

INTERVAL = 0.25
AUTOCHECKPOINT_PAGES = 10_000


class Checkpointer:
    """Checkpoints the WAL of one database file until `stop()`."""

    def __init__(self, path: str, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while not self._stopping.wait(self.interval):
                connection = connection or self._connect()
                if connection is not None and not self._checkpoint(connection):
                    connection.close()  # opened before the file was in WAL mode: it does not see it
                    connection = None
        finally:
            if connection is not None:
                connection.close()

    def _connect(self) -> sqlite3.Connection | None:
        try:
            connection = sqlite3.connect(self.path, timeout=0, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA synchronous=NORMAL")  # as the bot's connections (store/db.py)
        except sqlite3.Error as error:
            log.debug("cannot open %s for checkpoints: %s", self.path, error)
            return None
        return connection

    def _checkpoint(self, connection: sqlite3.Connection) -> bool:
        """One PASSIVE checkpoint; False when this connection does not see a WAL."""
        try:
            _busy, pages, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:  # a file being replaced or removed: try again later
            log.debug("checkpoint of %s failed: %s", self.path, error)
            return True
        return bool(pages >= 0)
