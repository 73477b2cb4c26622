"""Fixtures shared by the integration tier."""
from __future__ import annotations

import pytest

from tests.integration.serving_support import running_server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One real coldrec server for the session (start-up costs seconds)."""
    with running_server(tmp_path_factory.mktemp("serve")) as info:
        yield info
