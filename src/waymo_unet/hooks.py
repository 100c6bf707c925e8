"""Kedro hooks: parameters checked before the first node runs, and runs tracked in MLflow.

A misspelt key or a mistyped value (``--params training.train.learning_rate=abc``) would
otherwise stop the run only when its node starts, after ingestion has written shards.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click
import mlflow
from kedro.config import AbstractConfigLoader, MissingConfigException
from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline
from kedro_mlflow.framework.hooks import MlflowHook
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging
from mlflow.entities import RunStatus

ParameterCheck = Callable[[Mapping[str, Any]], object]


class ParameterError(click.ClickException, ValueError):
    """Parameters no config accepts: ``kedro run`` prints the message alone, in one line.

    Click shows a ``ClickException`` as ``Error: <message>`` and exits with 1; a plain
    ValueError would come with Kedro's full traceback. Outside the CLI it is a ValueError.
    """


def parameter_checks() -> dict[str, ParameterCheck]:
    """The config that reads each parameter section, in pipeline order.

    Imported here, not at the top: settings.py loads this module for every Kedro command,
    and these pull in torch and optuna.
    """
    from waymo_unet.data.ingestion_config import IngestionConfig
    from waymo_unet.data.label_catalog import LabelCatalogConfig
    from waymo_unet.evaluation.evaluate import EvaluationConfig
    from waymo_unet.training.config import TrainingRunConfig
    from waymo_unet.tuning.study import TuningConfig

    return {
        "ingestion": IngestionConfig.from_params,
        "label_catalog": LabelCatalogConfig.from_params,
        "training": TrainingRunConfig.from_params,
        "tuning": TuningConfig.from_params,
        "evaluation": EvaluationConfig.from_params,
    }


def check_parameters(pipeline: Pipeline, catalog: CatalogProtocol) -> None:
    """Build the config of each ``params:<section>`` the pipeline reads; raise on a bad one."""
    inputs = pipeline.inputs()
    for section, check in parameter_checks().items():
        name = f"params:{section}"
        if name in inputs and name in catalog:  # if not, Kedro itself says it is missing
            try:
                check(catalog[name].load())
            except ValueError as error:
                raise ParameterError(str(error)) from error


class ParameterCheckHooks:
    """Refuses a run whose parameters are wrong before any node does work."""

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol
    ) -> None:
        check_parameters(pipeline, catalog)


LOCAL_STORE = "sqlite:///mlflow.db"
"""Where runs go without a tracking URI: a SQLite file in the project folder (the default
of ``mlflow ui`` started there), artifacts in ``mlartifacts/`` beside it."""
LOCAL_ARTIFACTS = "mlartifacts"


class ExperimentTrackingHooks(MlflowHook):
    """kedro-mlflow's hook (one MLflow run per ``kedro run``), with this project's defaults.

    - ``enabled: false`` in ``mlflow.yml`` turns tracking off: no run, no store touched;
      the catalog's ``Mlflow*`` datasets then write their local files only.
    - No tracking URI: ``MLFLOW_TRACKING_URI`` if set, else the project's own SQLite store
      (MLflow 3 no longer writes the plain ``mlruns`` folder kedro-mlflow defaults to). A
      relative SQLite path is the project's, as kedro-mlflow makes a plain path, whatever
      the working directory.
    - Under torchrun only rank 0 tracks: other ranks would race to create the experiment.
    """

    def __init__(self) -> None:
        super().__init__()
        self._tracking_off = False
        # The URI this hook made MLflow export, unless it came from MLFLOW_TRACKING_URI.
        self._exported_project_uri: str | None = None
        # Runs after MLflow's own exit handler was registered, so it runs before it.
        atexit.register(self.end_interrupted_run)

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        settings = tracking_settings(context.config_loader)
        # torchrun sets RANK in each rank's environment; the other ranks must not track.
        self._tracking_off = not settings.pop("enabled", True) or os.environ.get("RANK", "0") != "0"
        if self._tracking_off:
            return
        environment_uri = os.environ.get("MLFLOW_TRACKING_URI")
        if environment_uri is not None and environment_uri == self._exported_project_uri:
            # MLflow exports the URI it is set to: an earlier session's store, in this
            # process (a notebook, a test), is not the user's choice.
            environment_uri = None
        context.config_loader["mlflow"] = with_project_store(
            settings, context.project_path, environment_uri
        )
        super().after_context_created(context)
        configured = (settings.get("server") or {}).get("mlflow_tracking_uri")
        from_environment = configured is None and environment_uri is not None
        self._exported_project_uri = None if from_environment else mlflow.get_tracking_uri()

    @hook_impl
    def before_pipeline_run(
        self, run_params: dict[str, Any], pipeline: Pipeline, catalog: CatalogProtocol
    ) -> None:
        # kedro-mlflow keeps the last session's run id, and reopens that run before every
        # node when set: a pipeline it does not track would reopen a finished run.
        self.run_id = None
        if self._tracking_off:
            self._is_mlflow_enabled = False
            switch_catalog_logging(catalog, False)
            return
        super().before_pipeline_run(run_params, pipeline, catalog)

    def end_interrupted_run(self) -> None:
        """At exit, mark this hook's run killed if it is still open.

        A Ctrl+C is no Exception: Kedro calls no error hook, and MLflow's own exit handler
        would end the run as finished, with part of its epochs.
        """
        run = mlflow.active_run()
        if run is not None and self.run_id is not None and run.info.run_id == self.run_id:
            mlflow.end_run(RunStatus.to_string(RunStatus.KILLED))


def tracking_settings(config_loader: AbstractConfigLoader) -> dict[str, Any]:
    """``conf/*/mlflow.yml`` as kedro-mlflow reads it; {} where there is none."""
    config_loader.config_patterns.setdefault("mlflow", ["mlflow*", "mlflow*/**", "**/mlflow*"])
    try:
        return dict(config_loader["mlflow"])
    except MissingConfigException:
        return {}


def with_project_store(
    settings: dict[str, Any], project_path: Path, environment_uri: str | None = None
) -> dict[str, Any]:
    """``settings`` with the tracking URI filled in (the configured one, else
    ``environment_uri``, else the project's store) and a SQLite store's path made absolute."""
    server = dict(settings.get("server") or {})
    uri = server.get("mlflow_tracking_uri") or environment_uri or LOCAL_STORE
    if not uri.startswith("sqlite:///"):
        return {**settings, "server": {**server, "mlflow_tracking_uri": uri}}
    database = Path(uri.removeprefix("sqlite:///"))
    server["mlflow_tracking_uri"] = f"sqlite:///{Path(project_path) / database}"
    tracking = dict(settings.get("tracking") or {})
    experiment = dict(tracking.get("experiment") or {})
    created = dict(experiment.get("create_experiment_kwargs") or {})
    # MLflow would put a new experiment's artifacts under the working directory.
    created["artifact_location"] = created.get("artifact_location") or LOCAL_ARTIFACTS
    experiment["create_experiment_kwargs"] = created
    tracking["experiment"] = experiment
    return {**settings, "server": server, "tracking": tracking}
