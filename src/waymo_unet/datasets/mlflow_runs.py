"""Run tags, nested runs and live epoch metrics in MLflow: what kedro-mlflow's datasets
do not record.

Both write to the run kedro-mlflow's hook opened for the ``kedro run``. Like its datasets
(class names starting with ``Mlflow``), they log only while ``_logging_activated``, which
the hook turns off when tracking is off; with no active run they log nothing either,
rather than open a stray run as MLflow's fluent API would.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import mlflow
from kedro.io import AbstractDataset, DatasetError
from kedro_mlflow.io.metrics import MlflowMetricsHistoryDataset
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from waymo_unet.tracking.epoch_logger import EpochMetricsLogger

logger = logging.getLogger(__name__)

NestedRun = dict[str, Any]
"""``{"name", "params": {..}, "metrics": {name: [{"step", "value"}, ..]}, "tags": {..},
"status": "FINISHED" | "FAILED"}``."""


class _ActiveRunDataset(AbstractDataset):
    """Writes to the active run while logging is on; says which run that is."""

    def __init__(self, metadata: dict[str, Any] | None = None) -> None:
        self._logging_activated = True  # kedro-mlflow's switch_catalog_logging sets it
        self.metadata = metadata

    def _run_to_log_to(self) -> mlflow.ActiveRun | None:
        if not self._logging_activated:
            return None
        run = mlflow.active_run()
        if run is None:
            logger.debug("%s: no active MLflow run, nothing logged", type(self).__name__)
        return run

    @staticmethod
    def _active_run_id() -> str:
        run = mlflow.active_run()
        if run is None:
            raise DatasetError("no active MLflow run to read from")
        return run.info.run_id

    def _describe(self) -> dict[str, Any]:
        return {"logging_activated": self._logging_activated}


class MlflowTagsDataset(_ActiveRunDataset):
    """Tags of the active run: ``save`` sets them (values as strings), ``load`` reads them."""

    def save(self, data: dict[str, Any]) -> None:
        if self._run_to_log_to() is not None:
            mlflow.set_tags({name: str(value) for name, value in data.items()})

    def load(self) -> dict[str, str]:
        tags = MlflowClient().get_run(self._active_run_id()).data.tags
        return {name: value for name, value in tags.items() if not name.startswith("mlflow.")}


class MlflowParamsDataset(_ActiveRunDataset):
    """Parameters of the active run: ``save`` logs them, ``load`` reads them back.

    For values a node works out, such as the settings training used once tuned values
    replaced the configured ones; the nodes' own parameters come from kedro-mlflow's hook.
    """

    def save(self, data: dict[str, Any]) -> None:
        if self._run_to_log_to() is not None:
            mlflow.log_params(data)

    def load(self) -> dict[str, str]:
        return dict(MlflowClient().get_run(self._active_run_id()).data.params)


class MlflowNestedRunsDataset(_ActiveRunDataset):
    """Child runs of the active run, one per record: tuning trials under the tuning run.

    Each child gets its parameters, metric series and tags in one batch and ends with the
    record's status, so the MLflow UI lists, charts and compares them under their parent.
    """

    def save(self, data: list[NestedRun]) -> None:
        parent = self._run_to_log_to()
        if parent is None:
            return
        client = MlflowClient()
        for record in data:
            child = client.create_run(
                parent.info.experiment_id,
                run_name=record["name"],
                tags={MLFLOW_PARENT_RUN_ID: parent.info.run_id, **record.get("tags", {})},
            )
            client.log_batch(
                child.info.run_id,
                metrics=_metrics(record.get("metrics", {})),
                params=[Param(name, str(value)) for name, value in record["params"].items()],
            )
            client.set_terminated(child.info.run_id, status=record.get("status", "FINISHED"))
        logger.info("Recorded %d nested run(s) under MLflow run %s", len(data), parent.info.run_id)

    def load(self) -> list[NestedRun]:
        parent = self._active_run_id()
        children = MlflowClient().search_runs(
            [mlflow.get_run(parent).info.experiment_id],
            filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent}'",
        )
        return [
            {
                "name": child.info.run_name,
                "params": dict(child.data.params),
                "metrics": dict(child.data.metrics),  # the last value of each series
                "tags": {k: v for k, v in child.data.tags.items() if not k.startswith("mlflow.")},
                "status": child.info.status,
            }
            for child in children
        ]


class MlflowEpochLoggerDataset(_ActiveRunDataset):
    """Loads an epoch callback that logs each epoch to the active run as it ends.

    An input of the training node, which hands it to ``train_model``: the node itself does
    not talk to MLflow. None where logging is off or no run is active.
    """

    def __init__(self, prefix: str = "training", metadata: dict[str, Any] | None = None) -> None:
        super().__init__(metadata)
        self._prefix = prefix

    def load(self) -> EpochMetricsLogger | None:
        run = self._run_to_log_to()
        if run is None:
            return None
        return EpochMetricsLogger(mlflow.get_tracking_uri(), run.info.run_id, self._prefix)

    def save(self, data: Any) -> None:
        raise DatasetError(f"{type(self).__name__} is an input: it logs through what it loads")

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "prefix": self._prefix}


class MlflowMetricSeriesDataset(MlflowMetricsHistoryDataset):
    """kedro-mlflow's metric history dataset that adds only the points a run lacks.

    Training logs its epochs live (best effort); its record then holds every epoch, and
    saving it fills the gaps (epochs restored from a checkpoint, or a tracking server
    that did not answer) without logging any epoch twice.
    """

    def _save(self, data: dict[str, list[dict[str, float]]]) -> None:
        if not self._logging_activated or mlflow.active_run() is None:
            return
        client, run_id = MlflowClient(), self.run_id
        series = {f"{self._prefix}.{name}" if self._prefix else name: p for name, p in data.items()}
        missing = {}
        for name, points in series.items():
            logged = {metric.step for metric in client.get_metric_history(run_id, name)}
            missing[name] = [point for point in points if point["step"] not in logged]
        client.log_batch(run_id, metrics=_metrics(missing))


def _metrics(series: dict[str, list[dict[str, float]]]) -> list[Metric]:
    now = int(time.time() * 1000)
    return [
        Metric(name, float(point["value"]), now, int(point["step"]))
        for name, points in series.items()
        for point in points
    ]
