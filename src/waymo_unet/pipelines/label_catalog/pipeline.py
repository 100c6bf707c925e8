"""Label catalogue: class histograms -> catalogue table (people) and JSON (training)."""

from kedro.pipeline import Node, Pipeline

from waymo_unet.pipelines.label_catalog import nodes


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                nodes.fit_label_catalog,
                inputs=["intermediate_class_histograms", "params:label_catalog"],
                outputs=["model_input_label_catalog_table", "model_input_label_catalog"],
                name="fit_label_catalog",
            ),
        ],
        tags="label_catalog",
    )
