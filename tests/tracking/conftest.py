"""A real MLflow tracking server, started once for the tests that need one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.mlflow_server import running_mlflow_server


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URI (``http://127.0.0.1:PORT``) of a server on SQLite with a proxied artifact store."""
    with running_mlflow_server(tmp_path_factory.mktemp("mlflow")) as uri:
        yield uri
