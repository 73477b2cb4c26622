"""The feature store's public API in one import: re-exports only, no code of its own.

The CLI and the pipeline stages import the store operations from here
(``from coldrec.feature_store.store import setup_store, open_store, materialize, ...``), so this
module keeps those names in one place while each job lives in its own module:

- :mod:`coldrec.feature_store.repo`             the repo copy: locations, rendering
                                           ``feature_store.yaml``, ``feast apply``, opening it
                                           (``setup_store``, ``open_store``, ``apply``, ...);
- :mod:`coldrec.feature_store.materialization`  loading the tables into the online store (``materialize``);
- :mod:`coldrec.feature_store.online`           online reads (``get_user_profile(s)``, ``get_item_features``);
- :mod:`coldrec.feature_store.historical`       point-in-time training reads (``historical_features``);
- :mod:`coldrec.feature_store.push`             live pushes (``push_event``);
- :mod:`coldrec.feature_store.errors`           ``FeatureStoreError`` and the mapping of Feast failures to it.

Importing this module does not import feast (~10 s): the functions that need it import it.
"""
from __future__ import annotations

from coldrec.feature_store.errors import FeatureStoreError
from coldrec.feature_store.historical import historical_features
from coldrec.feature_store.materialization import materialize
from coldrec.feature_store.online import get_item_features, get_user_profile, get_user_profiles
from coldrec.feature_store.push import push_event
from coldrec.feature_store.repo import (
    apply,
    declarations_dir,
    default_features_data,
    default_repo_dir,
    open_store,
    project_name,
    redis_connection,
    render_repo,
    setup_store,
    store_config,
)

__all__ = [
    "FeatureStoreError",
    "apply",
    "declarations_dir",
    "default_features_data",
    "default_repo_dir",
    "get_item_features",
    "get_user_profile",
    "get_user_profiles",
    "historical_features",
    "materialize",
    "open_store",
    "project_name",
    "push_event",
    "redis_connection",
    "render_repo",
    "setup_store",
    "store_config",
]
