"""The project's kedro-mlflow hook across Kedro sessions in one process (a notebook, tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from kedro.framework.context import KedroContext
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog
from kedro.pipeline import Node, Pipeline
from mlflow.tracking import MlflowClient

from tests.projects import make_project
from waymo_unet.hooks import ExperimentTrackingHooks

RUN_PARAMS = {
    "tags": None,
    "node_names": None,
    "from_nodes": None,
    "to_nodes": None,
    "from_inputs": None,
    "load_versions": None,
}
NOTHING = Pipeline([Node(lambda: 1, inputs=None, outputs="one", name="make_one")])


def context_of(project: Path) -> KedroContext:
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        return session.load_context()


@pytest.fixture
def projects(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """Two project copies (conf only); MLflow's global URI unset after the test."""
    roots = [tmp_path / "a", tmp_path / "b"]
    for root in roots:
        root.mkdir()
    try:
        yield tuple(make_project(root, raw=None) for root in roots)
    finally:
        while mlflow.active_run():
            mlflow.end_run()
        mlflow.set_tracking_uri(None)


def tracking_uri(context: KedroContext) -> str:
    return context.mlflow.server.mlflow_tracking_uri


def test_each_project_tracks_into_its_own_store(projects):
    first, second = projects

    assert tracking_uri(context_of(first)) == f"sqlite:///{first}/mlflow.db"
    # MLflow exported the first store's URI: the second project must not take it for
    # the user's MLFLOW_TRACKING_URI.
    assert tracking_uri(context_of(second)) == f"sqlite:///{second}/mlflow.db"


def test_the_users_tracking_uri_holds_for_every_session(projects, monkeypatch, tmp_path):
    team = f"sqlite:///{tmp_path}/team.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", team)

    assert [tracking_uri(context_of(project)) for project in projects] == [team, team]


def test_a_local_override_keeps_the_other_tracking_settings(projects):
    project, _ = projects
    (project / "conf/local/mlflow.yml").write_text(
        "tracking:\n  disable_tracking:\n    pipelines: [inference]\n"
    )

    tracking = context_of(project).mlflow.tracking

    assert tracking.disable_tracking.pipelines == ["inference"]
    assert tracking.params.dict_params.flatten  # from conf/base/mlflow.yml
    assert not tracking.run.nested


def test_an_untracked_pipeline_does_not_reopen_the_last_run(projects):
    project, _ = projects
    (project / "conf/local/mlflow.yml").write_text(
        "tracking:\n  disable_tracking:\n    pipelines: [inference]\n"
    )
    hooks = ExperimentTrackingHooks()
    hooks.after_context_created(context_of(project))
    catalog = DataCatalog()
    hooks.before_pipeline_run(RUN_PARAMS | {"pipeline_names": ["training"]}, NOTHING, catalog)
    finished = hooks.run_id
    hooks.after_pipeline_run(RUN_PARAMS | {"pipeline_names": ["training"]}, NOTHING, catalog)

    hooks.before_pipeline_run(RUN_PARAMS | {"pipeline_names": ["inference"]}, NOTHING, catalog)
    hooks.before_node_run(NOTHING.nodes[0], catalog, {}, is_async=False)

    assert mlflow.active_run() is None
    assert MlflowClient().get_run(finished).info.status == "FINISHED"


def test_a_run_still_open_at_exit_is_marked_killed(projects):
    project, _ = projects
    hooks = ExperimentTrackingHooks()
    hooks.after_context_created(context_of(project))
    hooks.before_pipeline_run(RUN_PARAMS | {"pipeline_names": ["training"]}, NOTHING, DataCatalog())
    interrupted = hooks.run_id

    hooks.end_interrupted_run()  # what exiting after a Ctrl+C calls

    assert mlflow.active_run() is None
    assert MlflowClient().get_run(interrupted).info.status == "KILLED"


def test_tracking_off_opens_no_run(projects):
    project, _ = projects
    (project / "conf/local/mlflow.yml").write_text("enabled: false\n")
    hooks = ExperimentTrackingHooks()
    hooks.after_context_created(context_of(project))

    hooks.before_pipeline_run(RUN_PARAMS | {"pipeline_names": ["training"]}, NOTHING, DataCatalog())

    assert mlflow.active_run() is None
    assert not (project / "mlflow.db").exists()
