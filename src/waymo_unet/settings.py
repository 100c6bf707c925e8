"""Kedro project settings; everything not set here keeps Kedro's default."""

import os
import warnings

from waymo_unet.config_resolvers import gcs_url
from waymo_unet.hooks import ExperimentTrackingHooks, ParameterCheckHooks

# kedro 1.7 calls an OmegaConf API that OmegaConf 2.4 deprecated: not ours to fix, and it
# would open every run with three warnings (the tests filter it in pyproject.toml).
warnings.filterwarnings(
    "ignore", message=r"register_new_resolver\(\) is deprecated", category=UserWarning
)

# A misspelt or mistyped parameter stops `kedro run` before its first node, in one line;
# then one MLflow run records the run (conf/base/mlflow.yml). Pluggy calls the hooks last
# registered first, so a run refused for its parameters opens no MLflow run.
HOOKS = (ExperimentTrackingHooks(), ParameterCheckHooks())
# ExperimentTrackingHooks is kedro-mlflow's hook with this project's defaults: the plugin
# must not register its own as well.
DISABLE_HOOKS_FOR_PLUGINS = ("kedro_mlflow", "kedro-mlflow")

# Like .telemetry for Kedro: no usage data goes to MLflow from this project's runs (its client
# would otherwise report from every `kedro run`). Set MLFLOW_DISABLE_TELEMETRY=false to share.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        # Credentials always come from conf/local/credentials.yml (git-ignored), whatever
        # the --env: Kedro reads only base and the run environment, so `--env gcs` would
        # not see conf/local otherwise. Each environment layer reads the file once.
        "credentials": ["../local/credentials*"],
    },
    # conf/local/mlflow.yml overrides single keys of conf/base/mlflow.yml (its `tracking:`
    # holds settings the project relies on, such as flattened parameters), not whole ones.
    "merge_strategy": {"mlflow": "soft"},
    # `${gcs_url:bucket,prefix}` in conf/gcs/catalog.yml: an absent or empty prefix is
    # the bucket root, which `gs://${bucket}/${prefix}` cannot express.
    "custom_resolvers": {"gcs_url": gcs_url},
}
