"""Each epoch's metrics in MLflow as the epoch ends, not when the training node returns.

Hours of training then show their curves while they run, and a run that crashes keeps
the epochs it finished (the resumed run logs those it restores at its end).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from waymo_unet.tracking.records import epoch_metrics

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochMetricsLogger:
    """A ``train_model`` epoch callback logging to one MLflow run, ``<prefix>.<metric>``.

    Two strings, so it pickles into the DDP ranks that train; every rank calls it, the
    first one logs. A tracking server that does not answer costs a warning per epoch,
    never the training run.
    """

    tracking_uri: str
    run_id: str
    prefix: str = "training"

    def __call__(self, record: dict[str, Any]) -> None:
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        epoch, now = int(record["epoch"]), int(time.time() * 1000)
        metrics = [
            Metric(f"{self.prefix}.{name}", value, now, epoch)
            for name, value in epoch_metrics(record).items()
        ]
        # A run that crashes carries it too: the run that resumes it has the same one.
        tags = [RunTag(f"{self.prefix}.fingerprint", record["fingerprint"])]
        try:
            MlflowClient(self.tracking_uri).log_batch(self.run_id, metrics=metrics, tags=tags)
        except (MlflowException, OSError) as error:  # requests' errors are OSErrors
            logger.warning(
                "Epoch %d not logged to MLflow run %s (%s): training goes on",
                epoch,
                self.run_id,
                error,
            )
