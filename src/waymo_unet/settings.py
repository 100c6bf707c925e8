"""Kedro project settings; everything not set here keeps Kedro's default."""

CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {
        # Credentials always come from conf/local/credentials.yml (git-ignored), whatever
        # the --env: Kedro reads only base and the run environment, so `--env gcs` would
        # not see conf/local otherwise. Each environment layer reads the file once.
        "credentials": ["../local/credentials*"],
    },
}
