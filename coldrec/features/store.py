"""The feature store's public API in one import: re-exports only, no code of its own.

The CLI and the pipeline stages import the store operations from here
(``from coldrec.features.store import setup_store, open_store, materialize, ...``), so this
module keeps those names in one place while each job lives in its own module:

- :mod:`coldrec.features.repo`             the repo copy: locations, rendering
                                           ``feature_store.yaml``, ``feast apply``, opening it
                                           (``setup_store``, ``open_store``, ``apply``, ...);
- :mod:`coldrec.features.materialization`  loading the tables into the online store (``materialize``);
- :mod:`coldrec.features.online`           online reads (``get_user_profile(s)``, ``get_item_features``);
- :mod:`coldrec.features.historical`       point-in-time training reads (``historical_features``);
- :mod:`coldrec.features.push`             live pushes (``push_event``);
- :mod:`coldrec.features.errors`           ``FeatureStoreError`` and the mapping of Feast failures to it.

Importing this module does not import feast (~10 s): the functions that need it import it.
"""
from __future__ import annotations

from coldrec.features.errors import FeatureStoreError
from coldrec.features.historical import historical_features
from coldrec.features.materialization import materialize
from coldrec.features.online import get_item_features, get_user_profile, get_user_profiles
from coldrec.features.push import push_event
from coldrec.features.repo import (
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
