"""Inference: trained model + camera images -> label PNGs (Waymo ids) and overlays."""

from kedro.pipeline import Node, Pipeline

from waymo_unet.pipelines.inference import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.segment_camera_images,
                inputs=["models_deployed_model", "inference_camera_images", "params:inference"],
                outputs=["model_output_predicted_labels", "model_output_prediction_overlays"],
                name="segment_camera_images",
            ),
        ],
        tags="inference",
    )
