"""A misspelt or mistyped parameter stops `kedro run` before any node, in one line."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from kedro.framework.cli.project import run as kedro_run_command
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, MemoryDataset

from tests.projects import make_project
from waymo_unet.hooks import ParameterError, check_parameters
from waymo_unet.pipelines import ingestion, training


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project(tmp_path_factory.mktemp("project"))


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*") if path.is_file()}


@pytest.mark.parametrize(
    ("pipeline", "params", "message"),
    [
        (
            "ingestion",
            "ingestion.heigth=10",
            "Error: unknown key ingestion.heigth=10; did you mean ingestion.height? "
            "(see conf/base/parameters_ingestion.yml; known: height, width, ",
        ),
        (
            "training",  # ingestion and label catalogue first: they must not run either
            "training.train.learning_rate=abc",
            "Error: training.train.learning_rate must be a number, got 'abc' "
            "(see conf/base/parameters_training.yml)",
        ),
    ],
)
def test_a_bad_parameter_stops_the_run_before_any_node_in_one_line(
    project, pipeline, params, message
):
    before = files_under(project / "data")
    bootstrap_project(project)
    with contextlib.chdir(project):
        result = CliRunner().invoke(
            kedro_run_command, ["--pipelines", pipeline, "--params", params]
        )
    assert result.exit_code == 1, result.output
    last_line = result.output.rstrip("\n").splitlines()[-1]
    assert last_line.startswith(message), result.output
    assert "Traceback" not in result.output
    assert files_under(project / "data") == before  # nothing decoded, nothing written
    assert not (project / "data" / "03_primary" / "shard_index.parquet").exists()
    assert no_mlflow_run_in(project)  # refused before kedro-mlflow opened its run


def no_mlflow_run_in(project: Path) -> bool:
    from mlflow.tracking import MlflowClient

    store = project / "mlflow.db"
    if not store.exists():
        return True
    experiments = MlflowClient(f"sqlite:///{store}").search_experiments()
    return not MlflowClient(f"sqlite:///{store}").search_runs(
        [e.experiment_id for e in experiments]
    )


def catalog_of(**sections: object) -> DataCatalog:
    return DataCatalog({f"params:{name}": MemoryDataset(value) for name, value in sections.items()})


def test_only_the_sections_a_pipeline_reads_are_checked():
    catalog = catalog_of(ingestion={"height": 8, "width": 8}, training={"use_tunned": False})
    check_parameters(ingestion.create_pipeline(), catalog)  # training is not read
    with pytest.raises(ParameterError, match=r"training\.use_tunned=False") as error:
        check_parameters(training.create_pipeline(), catalog)
    # A ValueError to a caller of KedroSession.run; one line from the command line.
    assert isinstance(error.value, ValueError)
    assert isinstance(error.value, click.ClickException)
