"""Kedro hooks: every parameter section a run reads is checked before its first node runs.

A misspelt key or a mistyped value (``--params training.train.learning_rate=abc``) would
otherwise stop the run only when its node starts, after ingestion has written shards.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import click
from kedro.framework.hooks import hook_impl
from kedro.io import CatalogProtocol
from kedro.pipeline import Pipeline

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
