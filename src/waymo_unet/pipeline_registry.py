"""Project pipelines."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from waymo_unet.pipelines import (
    evaluation,
    inference,
    ingestion,
    label_catalog,
    reporting,
    training,
    tuning,
)


def register_pipelines() -> dict[str, Pipeline]:
    """Each pipeline by name; ``__default__`` runs the whole chain.

    ``tuning`` and ``training`` include the ingestion and label catalogue they depend on,
    so that each works on a fresh clone; ingestion reuses the segments it has already
    done, so once the shards exist this costs a few key reads. ``training`` reads the
    tuning study's best hyper-parameters when tuning has run, but does not run it.
    ``evaluation`` scores the deployed model with Waymo's metric on the raw validation
    files; ``reporting`` charts what tuning, training and evaluation wrote; ``inference``
    segments new images.
    """
    preparation = ingestion.create_pipeline() + label_catalog.create_pipeline()
    tuning_chain = preparation + tuning.create_pipeline()
    training_chain = preparation + training.create_pipeline()
    return {
        "ingestion": ingestion.create_pipeline(),
        "label_catalog": label_catalog.create_pipeline(),
        "tuning": tuning_chain,
        "training": training_chain,
        "evaluation": evaluation.create_pipeline(),
        "reporting": reporting.create_pipeline(),
        "inference": inference.create_pipeline(),
        "__default__": tuning_chain
        + training_chain
        + evaluation.create_pipeline()
        + reporting.create_pipeline(),
    }
