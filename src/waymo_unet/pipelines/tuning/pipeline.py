"""Tuning: shards + label catalogue -> trials table and best hyper-parameters."""

from kedro.pipeline import Node, Pipeline

from waymo_unet.pipelines.tuning import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.tune_hyperparameters,
                inputs=[
                    "primary_shard_store",
                    "primary_shard_index",
                    "model_input_label_catalog",
                    "models_tuning_study",
                    "params:training",
                    "params:tuning",
                ],
                outputs=[
                    "model_output_tuning_trials",
                    "model_input_tuned_hyperparameters",
                    "tracking_tuning_trials",
                ],
                name="tune_hyperparameters",
            ),
        ],
        tags="tuning",
    )
