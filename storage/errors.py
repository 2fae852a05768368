"""Storage errors: the only exceptions callers of `storage` need to know about.

Driver errors (sqlalchemy, psycopg, sqlite3) are translated into these at the repository and
unit-of-work boundary; the original is kept as ``__cause__`` for logging.
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class of every error raised by the storage layer."""


class NotFound(StorageError):
    """The entity does not exist (or belongs to another tenant, which looks the same)."""

    def __init__(self, entity: str, id: str) -> None:
        super().__init__(f"{entity} {id!r} not found")
        self.entity = entity
        self.id = id


class AlreadyExists(StorageError):
    """A uniqueness rule was violated: another row already has ``field == value``."""

    def __init__(self, entity: str, field: str, value: str) -> None:
        super().__init__(f"{entity} with {field} {value!r} already exists")
        self.entity = entity
        self.field = field
        self.value = value


class Conflict(StorageError):
    """A compare-and-swap write lost: the stored etag differs from the expected one."""

    def __init__(self, entity: str, id: str) -> None:
        super().__init__(f"{entity} {id!r} was modified concurrently (etag mismatch)")
        self.entity = entity
        self.id = id


class Unavailable(StorageError):
    """The database could not be reached, or stayed busy, after the retries ran out."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class CommitOutcomeUnknown(Unavailable):
    """The connection failed during COMMIT: the transaction may or may not have landed.

    Never retried, since running the transaction again could apply it twice.
    """


class DeadlineExceeded(StorageError):
    """The call's deadline passed before its transaction committed; it was rolled back.

    Committing after the client stopped waiting would apply a write the client saw fail.
    """
