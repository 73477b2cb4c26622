"""Errors a user can act on. The CLI prints their message on one line and exits non-zero."""


class ColdrecError(Exception):
    """Base class: anything raised as this is the user's input or environment, not a bug."""

    exit_code = 2


class ConfigError(ColdrecError):
    """params.yaml or settings are missing or malformed."""


class DataError(ColdrecError):
    """An input file breaks the canonical data contract (message names file, column, row)."""


class DatasetNotFound(ColdrecError):
    """A named dataset's raw files are nowhere to be found and cannot be downloaded."""
