"""The project's small exception hierarchy.

Every error the project raises on purpose derives from :class:`HydatisError`, so a caller
(the CLI, a server) can map it to a clear message or an HTTP status in one place.
"""

from __future__ import annotations

__all__ = ["ConfigError", "DataSourceError", "HydatisError", "SchemaError"]


class HydatisError(Exception):
    """Base class of every error the project raises deliberately."""


class ConfigError(HydatisError):
    """A configuration key or command-line option has a bad value."""


class DataSourceError(HydatisError):
    """A trace file is missing, unreadable or not in the format its importer expects."""


class SchemaError(HydatisError):
    """A dataset table breaks the schema.

    Attributes:
        table: the table's name (``nodes``, ``node_metrics``, ``pods``, ``pod_usage``).
        column: the offending column, or None for a table-level problem.
        row: the position of the first bad row, or None.
    """

    def __init__(self, table: str, column: str | None, row: int | None, reason: str) -> None:
        self.table, self.column, self.row, self.reason = table, column, row, reason
        where = f"table '{table}'"
        if column is not None:
            where += f", column '{column}'"
        if row is not None:
            where += f", row {row}"
        super().__init__(f"{where}: {reason}")
