"""The training node as a torchrun program, for DDP across several machines.

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m waymo_unet.train_distributed --env gcs --params "training.train.epochs=20"

Run it from the project folder on every machine, after `kedro run --pipelines ingestion`
and `--pipelines label_catalog` (and `tuning`, if its values are used) wrote the shards
and their index into a `data/` folder all machines share.
Every rank loads the training node's inputs through the project's catalog and runs the
same ``TrainingJob`` as ``kedro run --pipelines training``; rank 0 saves the node's
outputs, and the deployable export, through the catalog.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from waymo_unet.pipelines.training import create_pipeline, nodes
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default=None, help="Kedro configuration environment")
    parser.add_argument("--params", default="", help='runtime parameters, "a.b=1,c=2"')
    args = parser.parse_args(argv)
    bootstrap_project(Path.cwd())  # also sets up the project's logging
    context = context_from_environment()
    pipeline = {node.name: node for node in create_pipeline().nodes}
    train, export = pipeline["train_segmentation_model"], pipeline["export_deployable_model"]
    with KedroSession.create(env=args.env, runtime_params=parse_params(args.params)) as session:
        catalog = session.load_context().catalog
        inputs = [catalog.load(name) for name in train.inputs]
        job = nodes.training_job(*inputs)
        result = job.run(context)
        if context is None or context.is_main:
            label_catalog = inputs[train.inputs.index("model_input_label_catalog")]
            outputs = nodes.training_outputs(job, result, label_catalog)
            for name, value in zip(train.outputs, outputs, strict=True):
                catalog.save(name, value)
            catalog.save(export.outputs[0], export.func(outputs[0]))
            logger.info("Saved %s", ", ".join([*train.outputs, *export.outputs]))
    leave_process_group()  # every rank leaves once rank 0 has saved


if __name__ == "__main__":
    main()
