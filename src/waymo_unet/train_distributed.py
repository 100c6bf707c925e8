"""The training node as a torchrun program, for DDP across several machines.

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m waymo_unet.train_distributed --env gcs --params "training.train.epochs=20"

Run it from the project folder on every machine, after `kedro run --pipelines ingestion`
and `--pipelines label_catalog` (and `tuning`, if its values are used) wrote the shards
and their index into a `data/` folder all machines share.
Every rank loads the training node's inputs through the project's catalog and runs the
same ``TrainingJob`` as ``kedro run --pipelines training``; rank 0 saves the node's
outputs, its MLflow record and the deployable export through the catalog, in an MLflow run
of its own ("training (torchrun)", with the training parameters) when tracking is on.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import yaml
from kedro.framework.context import KedroContext
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import CatalogProtocol
from kedro.pipeline import Node
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging

from waymo_unet.pipelines.training import create_pipeline, nodes
from waymo_unet.tracking.records import flat_parameters
from waymo_unet.training.distributed import context_from_environment, leave_process_group
from waymo_unet.training.job import TrainingJob
from waymo_unet.training.train import TrainResult

logger = logging.getLogger(__name__)


def parse_params(text: str) -> dict[str, Any]:
    """``"a.b=1,c=x"`` -> ``{"a": {"b": 1}, "c": "x"}``, values read as YAML, as Kedro does."""
    params: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, _, value = item.partition("=")
        *parents, leaf = key.strip().split(".")
        target = params
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = yaml.safe_load(value)
    return params


@contextlib.contextmanager
def tracking_run(context: KedroContext, catalog: CatalogProtocol) -> Iterator[None]:
    """On rank 0, an MLflow run around training and the saves, as ``kedro run`` would open,
    with the training parameters; nothing where tracking is off (the project's hook then
    leaves ``context.mlflow`` unset, as it does on every other rank)."""
    if getattr(context, "mlflow", None) is None:
        switch_catalog_logging(catalog, False)
        yield
        return
    with mlflow.start_run(run_name="training (torchrun)"):
        mlflow.log_params(flat_parameters({"training": catalog.load("params:training")}))
        yield


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="Kedro configuration environment")
    parser.add_argument("--params", default="", help='runtime parameters, "a.b=1,c=2"')
    args = parser.parse_args(argv)
    bootstrap_project(Path.cwd())  # also sets up the project's logging
    context = context_from_environment()
    first_rank = context is None or context.is_main
    pipeline = {node.name: node for node in create_pipeline().nodes}
    with KedroSession.create(env=args.env, runtime_params=parse_params(args.params)) as session:
        kedro_context = session.load_context()
        catalog = kedro_context.catalog
        with tracking_run(kedro_context, catalog):  # rank 0's; the epoch logger is None elsewhere
            train = pipeline["train_segmentation_model"]
            inputs = {name: catalog.load(name) for name in train.inputs}
            job = nodes.training_job(*inputs.values())
            result = job.run(context)
            if first_rank:
                _save_outputs(catalog, pipeline, inputs, job, result)
    leave_process_group()  # every rank leaves once rank 0 has saved


def _save_outputs(
    catalog: CatalogProtocol,
    pipeline: dict[str, Node],
    inputs: dict[str, Any],
    job: TrainingJob,
    result: TrainResult,
) -> None:
    """Save what the training pipeline's nodes after training would: outputs, the MLflow
    record, the deployable export."""
    train, record, export = (
        pipeline[name]
        for name in ("train_segmentation_model", "record_training_run", "export_deployable_model")
    )
    trained = nodes.training_outputs(job, result, inputs["model_input_label_catalog"])
    outputs = dict(zip(train.outputs, trained, strict=True))
    for name, value in outputs.items():
        catalog.save(name, value)
    available = {**inputs, **outputs}
    recorded = record.func(*(available[name] for name in record.inputs))
    for name, value in zip(record.outputs, recorded, strict=True):
        catalog.save(name, value)
    catalog.save(export.outputs[0], export.func(outputs[export.inputs[0]]))
    logger.info("Saved %s", ", ".join([*train.outputs, *record.outputs, *export.outputs]))


if __name__ == "__main__":
    main()
