"""FeatureStoreError, and the one place that turns Feast's failures into it.

Every store operation (apply, materialise, online and offline reads, pushes) can hit the same
two setup problems: a Redis online store that does not answer, or a repo copy that was never
applied (SQLite tables or registry entries missing). Feast reports them as assorted driver
exceptions with long tracebacks; :func:`store_errors` maps them to a one-line
:class:`FeatureStoreError` that the CLI prints, so each operation module only decorates.
"""
from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

from coldrec.core.errors import ColdrecError

T = TypeVar("T")


class FeatureStoreError(ColdrecError):
    """The feature store is not set up (tables not built, repo not applied) or unreachable."""


def store_errors(fn: Callable[..., T]) -> Callable[..., T]:
    """An unreachable Redis or a never-applied store becomes a one-line FeatureStoreError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except ColdrecError:
            raise
        except Exception as exc:
            kind = f"{type(exc).__module__}.{type(exc).__name__}"
            if kind.startswith("redis.") and ("Connection" in kind or "Timeout" in kind):
                raise FeatureStoreError(f"Redis online store unreachable: {exc}") from None
            if isinstance(exc, sqlite3.OperationalError) or type(exc).__name__ in (
                "FeatureViewNotFoundException", "FeatureServiceNotFoundException"
            ):
                raise FeatureStoreError(f"feature store not set up ({exc}); run `coldrec features apply` first") from None
            raise

    return wrapper
