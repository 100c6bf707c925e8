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
from kedro.runner import SequentialRunner
from kedro_mlflow.io.catalog.switch_catalog_logging import switch_catalog_logging

from waymo_unet.pipelines.training import create_pipeline, nodes
from waymo_unet.tracking.records import flat_parameters
from waymo_unet.training.distributed import context_from_environment, leave_process_group

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
    pipeline = create_pipeline()
    (train,) = pipeline.only_nodes("train_segmentation_model").nodes
    with KedroSession.create(env=args.env, runtime_params=parse_params(args.params)) as session:
        kedro_context = session.load_context()
        catalog = kedro_context.catalog
        with tracking_run(kedro_context, catalog):  # rank 0's; the epoch logger is None elsewhere
            inputs = [catalog.load(name) for name in train.inputs]
            job = nodes.training_job(*inputs)
            result = job.run(context)
            if context is None or context.is_main:
                label_catalog = inputs[train.inputs.index("model_input_label_catalog")]
                outputs = nodes.training_outputs(job, result, label_catalog)
                for name, value in zip(train.outputs, outputs, strict=True):
                    catalog.save(name, value)
                # The pipeline's nodes after training, through the catalog as in `kedro run`.
                SequentialRunner().run(pipeline.from_inputs(*train.outputs), catalog)
                logger.info("Saved the training outputs, their MLflow record and the export")
    leave_process_group()  # every rank leaves once rank 0 has saved


if __name__ == "__main__":
    main()
