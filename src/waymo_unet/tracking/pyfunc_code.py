"""The registered model's code, as MLflow logs and loads it ("models from code").

``log_deployed_model`` hands MLflow this file instead of a pickled object: loading a
version runs it, so nothing is unpickled, and the model only needs this package installed.
"""

from mlflow.models import set_model

from waymo_unet.tracking.model_registry import DeployedModelPyfunc

set_model(DeployedModelPyfunc())
