"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from waymo_unet.pipelines import ingestion, label_catalog, training


def register_pipelines() -> dict[str, Pipeline]:
    """Each pipeline by name; ``__default__`` runs the whole chain.

    ``training`` includes the ingestion and label catalogue it depends on, so that
    ``kedro run --pipeline training`` works on a fresh clone; ingestion reuses the
    segments it has already done, so once the shards exist this costs a few key reads.
    """
    preparation = ingestion.create_pipeline() + label_catalog.create_pipeline()
    training_chain = preparation + training.create_pipeline()
    return {
        "ingestion": ingestion.create_pipeline(),
        "label_catalog": label_catalog.create_pipeline(),
        "training": training_chain,
        "__default__": training_chain,
    }
