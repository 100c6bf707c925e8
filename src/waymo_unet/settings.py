"""Kedro project settings; everything not set here keeps Kedro's default."""

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
}
