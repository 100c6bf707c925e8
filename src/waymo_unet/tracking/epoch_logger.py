"""Each epoch's metrics in MLflow as the epoch ends, not when the training node returns.

Hours of training then show their curves while they run, and a run that crashes keeps
the epochs it finished. Logging is best effort and never holds training up: a background
thread sends each epoch, and after one failure the logger stops trying; the training
node's record adds every epoch the run lacks when training ends.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import torch.distributed as dist
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from waymo_unet.tracking.records import FINGERPRINT_TAG, epoch_metrics

logger = logging.getLogger(__name__)


class EpochMetricsLogger:
    """A ``train_model`` epoch callback logging to one MLflow run, ``<prefix>.<metric>``.

    It pickles as its URI, run id and prefix, so the DDP ranks that train get a copy;
    every rank calls it, the first one logs. The run is also tagged with the training's
    fingerprint from the first epoch on, so a crashed run and its resumption share it.
    """

    def __init__(self, tracking_uri: str, run_id: str, prefix: str = "training") -> None:
        self.tracking_uri, self.run_id, self.prefix = tracking_uri, run_id, prefix
        self._sender: ThreadPoolExecutor | None = None
        self._failed = False

    def __getstate__(self) -> dict[str, Any]:
        return {"tracking_uri": self.tracking_uri, "run_id": self.run_id, "prefix": self.prefix}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def __call__(self, record: dict[str, Any]) -> None:
        if self._failed or (dist.is_available() and dist.is_initialized() and dist.get_rank()):
            return
        if self._sender is None:  # one daemon-like worker: epochs arrive in order
            self._sender = ThreadPoolExecutor(1, thread_name_prefix="mlflow-epochs")
        self._sender.submit(self._send, record)

    def flush(self) -> None:
        """Wait until every epoch handed over so far has been sent (or has failed)."""
        if self._sender is not None:
            self._sender.shutdown(wait=True)
            self._sender = None

    def _send(self, record: dict[str, Any]) -> None:
        epoch, now = int(record["epoch"]), int(time.time() * 1000)
        metrics = [
            Metric(f"{self.prefix}.{name}", value, now, epoch)
            for name, value in epoch_metrics(record).items()
        ]
        tags = [RunTag(FINGERPRINT_TAG, record["fingerprint"])]
        try:
            MlflowClient(self.tracking_uri).log_batch(self.run_id, metrics=metrics, tags=tags)
        except (MlflowException, OSError) as error:  # requests' errors are OSErrors
            self._failed = True
            logger.warning(
                "Epoch %d not logged to MLflow run %s (%s): no more live epochs; the "
                "missing ones are logged when training ends",
                epoch,
                self.run_id,
                error,
            )
