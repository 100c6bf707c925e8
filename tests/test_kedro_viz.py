"""kedro-viz on this project: the JSON it serves, and the graph a headless Chromium draws.

The server runs ``kedro viz run --no-browser`` on a free localhost port in a scratch copy of
the project where ingestion and the label catalogue have run, so that table and chart
previews have data. Chromium is Debian's package (playwright's own browser download is not
reachable here); under CI the ``chromium`` fixture installs it when missing.
"""

from __future__ import annotations

import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from waymo_unet.datasets import DeployedModelDataset, SegmentationModelDataset
from waymo_unet.models.bundle import SegmentationModel
from waymo_unet.models.unet import UNetConfig, build_unet
from waymo_unet.pipeline_registry import register_pipelines

PROJECT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PIPELINES = {
    "ingestion",
    "label_catalog",
    "tuning",
    "training",
    "evaluation",
    "reporting",
    "inference",
}
LAYERS = [
    "raw",
    "intermediate",
    "primary",
    "model_input",
    "models",
    "model_output",
    "reporting",
    "tracking",
]
# Handles that a node writes through, read before they are written: no layer fits them
# without a cycle among the layers (see conf/base/catalog.yml).
UNLAYERED = {"primary_shard_store", "models_tuning_study", "tracking_epoch_logger"}
TINY = {"ingestion": {"height": 48, "width": 72, "workers": 2}}
START_TIMEOUT_S = 120
# kedro-viz's UI settings, as it keeps them in localStorage: no feature tour, node names as
# in the code, parameter nodes drawn.
UI_STATE = {
    "showFeatureHints": False,
    "isPrettyName": False,
    "nodeType": {"disabled": {"parameters": False, "task": False, "data": False}},
}


# ------------------------------------------------------------------ fixtures


def _install_chromium() -> str | None:
    """apt-get installs Debian's chromium; returns why it could not, or None."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        return "no apt-get on this system"
    command = [apt_get]
    if os.geteuid() != 0:
        sudo = shutil.which("sudo")
        if sudo is None:
            return "apt-get needs root and there is no sudo"
        command = [sudo, "-n", apt_get]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    steps = (
        ["update", "-qq"],
        ["install", "-y", "-qq", "--no-install-recommends", "chromium", "fonts-liberation"],
    )
    for step in steps:
        try:
            result = subprocess.run(
                command + step, env=env, capture_output=True, text=True, timeout=900
            )
        except subprocess.TimeoutExpired:
            return f"`apt-get {step[0]}` took more than 15 minutes"
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            return f"`apt-get {' '.join(step)}` failed: {' / '.join(tail)}"
    return None if CHROMIUM.exists() else f"apt-get installed chromium but {CHROMIUM} is missing"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's Chromium; skips, saying why, where it is missing and cannot be installed.

    Only CI (``CI=true``, a throwaway machine) installs it with apt-get: on a developer's
    machine a test run does not add system packages.
    """
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.exists():
        if os.environ.get("CI", "").lower() not in ("true", "1"):
            pytest.skip(
                f"Chromium is not at {CHROMIUM} (apt-get install chromium); only CI installs it"
            )
        reason = _install_chromium()
        if reason is not None:
            pytest.skip(f"Chromium is not installed and could not be: {reason}")
    return CHROMIUM


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A scratch copy of the project where ingestion, the label catalogue and one chart ran."""
    root = tmp_path_factory.mktemp("viz_project")
    shutil.copy(PROJECT / "pyproject.toml", root)
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    (root / "src").mkdir()  # the package itself is installed; Kedro wants the folder
    shutil.copytree(PROJECT / "data" / "01_raw", root / "data" / "01_raw")
    bootstrap_project(root)
    # kedro-viz's run hooks write .viz/ (dataset statistics) in the working directory.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        with KedroSession.create(project_path=root, runtime_params=TINY) as session:
            session.run(pipeline_names=["ingestion", "label_catalog"])
        with KedroSession.create(project_path=root, runtime_params=TINY) as session:
            session.run(pipeline_names=["reporting"], node_names=["plot_class_distribution"])
    return root


def _free_port() -> int:
    """A free localhost port below Linux's ephemeral range; kedro-viz refuses any above 49151."""
    for port in random.sample(range(20000, 32768), 100):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    pytest.fail("no free localhost port between 20000 and 32767")


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def _stop(server: subprocess.Popen) -> None:
    """Ends the server's whole process group: the CLI and the uvicorn process it spawned."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            break
        server.poll()  # reap the CLI process so that it stops counting
        time.sleep(0.2)
    else:
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=15)


@pytest.fixture(scope="module")
def viz(project: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``kedro viz run --no-browser`` on a free port; yields its base URL, stops it after."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("viz_log") / "kedro_viz.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kedro",
                "viz",
                "run",
                "--no-browser",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=project,
            env={**os.environ, "DO_NOT_TRACK": "1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as a whole below
        )
    try:
        url = _wait_for_server(server, port, log_path)
        yield url
    finally:
        _stop(server)
    with pytest.raises(ConnectionRefusedError):  # stopped: nothing listens there any more
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()


def _wait_for_server(server: subprocess.Popen, port: int, log_path: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"kedro viz exited with {server.returncode}:\n{log_path.read_text()}")
        # kedro-viz moves to the next port if this one was taken meanwhile; it says where.
        said = re.search(r"http://127\.0\.0\.1:(\d+)", log_path.read_text())
        url = f"http://127.0.0.1:{said.group(1) if said else port}"
        try:
            _get_json(f"{url}/api/main")
        except OSError:
            time.sleep(0.5)
        else:
            return url
    _stop(server)
    pytest.fail(f"kedro viz did not answer in {START_TIMEOUT_S} s:\n{log_path.read_text()}")


@pytest.fixture(scope="module")
def api(viz: str) -> dict[str, dict]:
    """What kedro-viz serves for each registered pipeline, by pipeline name."""
    return {name: _get_json(f"{viz}/api/pipelines/{name}") for name in register_pipelines()}


@pytest.fixture(scope="module")
def page(chromium: Path, viz: str, tmp_path_factory: pytest.TempPathFactory):
    """A page of headless Chromium (empty profile), with kedro-viz's UI settings preset."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium_profile")),
            executable_path=str(chromium),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            page = context.new_page()
            page.add_init_script(
                f"window.localStorage.setItem('KedroViz', {json.dumps(json.dumps(UI_STATE))})"
            )
            yield page
        finally:
            context.close()


# ------------------------------------------------------------------ helpers


def _names(graph: dict, kind: str) -> set[str]:
    return {node["name"] for node in graph["nodes"] if node["type"] == kind}


def _node(viz: str, graph: dict, name: str) -> dict:
    node_id = next(node["id"] for node in graph["nodes"] if node["name"] == name)
    return _get_json(f"{viz}/api/nodes/{node_id}")


def _drawn_names(page, expected: int, timeout_s: float = 30) -> set[str]:
    """Labels of the nodes drawn, once as many as ``expected`` are (the layout animates)."""
    deadline = time.monotonic() + timeout_s
    names: set[str] = set()
    while time.monotonic() < deadline:
        names = set(page.locator("g.pipeline-node .pipeline-node__text").all_text_contents())
        if len(names) >= expected:
            break
        time.sleep(0.25)
    return names


# ------------------------------------------------------------------ the JSON


def test_every_pipeline_is_served_with_its_nodes(api: dict[str, dict]):
    registry = register_pipelines()
    assert {p["id"] for p in api["__default__"]["pipelines"]} == PIPELINES | {"__default__"}
    for name, pipeline in registry.items():
        graph = api[name]
        assert graph["selected_pipeline"] == name
        assert _names(graph, "task") == {node.name for node in pipeline.nodes}, name
        served = _names(graph, "data") | _names(graph, "parameters")
        assert served == set(pipeline.datasets()), name
    for task in _names(api["__default__"], "task") | _names(api["inference"], "task"):
        assert re.fullmatch(r"[a-z]+(_[a-z0-9]+)+", task), f"{task} is not a verb_noun name"


def test_datasets_sit_on_their_layers(api: dict[str, dict]):
    assert api["__default__"]["layers"] == LAYERS
    for name in PIPELINES:
        assert set(api[name]["layers"]) <= set(LAYERS), name
    datasets = {
        node["name"]: node.get("layer")
        for graph in api.values()
        for node in graph["nodes"]
        if node["type"] == "data"
    }
    for dataset, layer in datasets.items():
        if dataset in UNLAYERED:
            assert layer is None, dataset
        elif dataset == "inference_camera_images":
            assert layer == "raw"
        else:  # the dataset names start with their layer
            assert layer is not None, dataset
            assert dataset.startswith(f"{layer}_"), (dataset, layer)


def test_parameters_are_attached_to_the_nodes_that_use_them(api: dict[str, dict]):
    for name in ("__default__", "inference"):
        graph = api[name]
        ids = {node["id"]: node["name"] for node in graph["nodes"]}
        served = {(ids[edge["source"]], ids[edge["target"]]) for edge in graph["edges"]}
        expected = {
            (dataset, node.name)
            for node in register_pipelines()[name].nodes
            for dataset in node.inputs
            if dataset.startswith("params:")
        }
        assert expected, name
        assert {edge for edge in served if edge[0].startswith("params:")} == expected


def test_tables_and_charts_have_previews(viz: str, api: dict[str, dict], project: Path):
    graph = api["__default__"]
    label_catalog = _node(viz, graph, "model_input_label_catalog_table")
    assert label_catalog["preview_type"] == "TablePreview"
    classes = [
        row[label_catalog["preview"]["columns"].index("name")]
        for row in label_catalog["preview"]["data"]
    ]
    catalogue = pd.read_csv(project / "data" / "05_model_input" / "label_catalog.csv")
    assert classes == list(catalogue["name"])  # every class, not only the first five
    assert {"UNDEFINED", "CAR", "PEDESTRIAN", "SKY"} <= set(classes)

    report = _node(viz, graph, "reporting_ingestion_report")
    assert report["preview_type"] == "TablePreview"
    assert len(report["preview"]["data"]) == 7  # one row per segment of the sample

    chart = _node(viz, graph, "reporting_class_distribution_chart")
    assert chart["preview_type"] == "ImagePreview"
    assert base64.b64decode(chart["preview"]).startswith(b"\x89PNG\r\n\x1a\n")
    # Not drawn here (it needs a trained model); the preview's kind is known regardless.
    overlays = _node(viz, graph, "reporting_validation_overlays")
    assert overlays["preview_type"] == "ImagePreview"

    assert _node(viz, graph, "raw_camera_images").get("preview") is None  # preview: false


# ------------------------------------------------------------------ the browser


def test_the_graph_renders_in_a_headless_browser(page, viz: str, api: dict[str, dict]):
    for name in [*sorted(PIPELINES), "__default__"]:
        graph = api[name]
        expected = {node["name"] for node in graph["nodes"]}
        page.goto(f"{viz}/?pid={name}")
        page.wait_for_selector("g.pipeline-node", timeout=60_000)
        assert _drawn_names(page, len(expected)) == expected, name
        assert page.locator(".pipeline-edge").count() >= len(graph["edges"]) > 0, name
    assert page.locator(".pipeline-layer-name").all_text_contents() == LAYERS


def test_previews_show_in_the_browser(page, viz: str, api: dict[str, dict]):
    graph = api["__default__"]
    ids = {node["name"]: node["id"] for node in graph["nodes"]}

    page.goto(f"{viz}/?pid=__default__&sid={ids['model_input_label_catalog_table']}")
    page.wait_for_selector(".pipeline-metadata__preview", timeout=60_000)
    page.get_by_text("PEDESTRIAN", exact=True).first.wait_for(timeout=30_000)

    page.goto(f"{viz}/?pid=__default__&sid={ids['reporting_class_distribution_chart']}")
    image = page.locator("img.pipeline-metadata__plot-image")
    image.wait_for(timeout=60_000)
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    assert image.evaluate("img => img.complete && img.naturalWidth") > 0


# ------------------------------------------------------------------ the models' previews


def test_model_datasets_preview_their_description_not_their_weights(tmp_path: Path):
    config = UNetConfig(num_classes=2, base_channels=4, depth=2)
    classes = [{"index": 0, "id": 2, "name": "CAR"}, {"index": 1, "id": 25, "name": "SKY"}]
    model = SegmentationModel(build_unet(config), config, classes, (16, 24))
    dataset = SegmentationModelDataset(str(tmp_path / "model.pt"))
    dataset.save(model)
    preview = json.loads(dataset.preview())
    assert "state_dict" not in preview
    assert preview["unet_config"]["num_classes"] == 2
    assert preview["classes"] == classes
    assert preview["parameter_count"] == sum(p.numel() for p in model.network.state_dict().values())

    (tmp_path / "deployed").mkdir()
    (tmp_path / "deployed" / "manifest.json").write_text('{"format": "torch.export"}')
    deployed = DeployedModelDataset(str(tmp_path / "deployed"))
    assert json.loads(deployed.preview()) == {"format": "torch.export"}
