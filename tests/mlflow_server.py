"""A real, local MLflow tracking server for tests.

``running_mlflow_server`` starts ``mlflow server`` in a subprocess (SQLite backend store, proxied
artifact store, one uvicorn worker, no job runner, no telemetry), waits until it answers
``/health`` and yields its tracking URI. On exit it stops the server's whole process group, so no
server outlives the test session, even when the server has spawned children of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 10.0

# MLflow 3.18 honours MLFLOW_DISABLE_TELEMETRY ("true"/"1") and DO_NOT_TRACK, the latter only
# when it is exactly "true": the DO_NOT_TRACK=1 that tests/conftest.py sets does not count.
# MLFLOW_SERVER_ENABLE_JOB_EXECUTION defaults to true and, with a SQL backend and huey installed,
# starts a huey job-runner process next to the server: tests need no jobs.
SERVER_ENVIRONMENT = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    "PYTHONUNBUFFERED": "1",  # the log file then holds everything up to a crash
}

# The health probe must reach the local server directly, whatever proxy the environment names.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    """A port that nothing listens on now (the OS picks it; it may be above 49151)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def _log_tail(log: Path, characters: int = 4000) -> str:
    try:
        return log.read_text(errors="replace")[-characters:]
    except OSError as error:
        return f"<no log: {error}>"


def _is_healthy(uri: str) -> bool:
    try:
        with _DIRECT.open(f"{uri}/health", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_healthy(process: subprocess.Popen[bytes], uri: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _is_healthy(uri):
        if process.poll() is not None:
            raise RuntimeError(
                f"mlflow server exited with code {process.returncode} before answering "
                f"{uri}/health; end of {log}:\n{_log_tail(log)}"
            )
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"mlflow server did not answer {uri}/health within {START_TIMEOUT_S:.0f} s; "
                f"end of {log}:\n{_log_tail(log)}"
            )
        time.sleep(0.25)


def _group_alive(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reap the leader once it exits: a zombie still counts as a group member
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (CLI, uvicorn and anything they started), then SIGKILL."""
    # The child leads its own session, so its pid is also its process-group id.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    # Wait for the whole group, not only the leader: a uvicorn child may outlive the CLI.
    deadline = time.monotonic() + STOP_TIMEOUT_S
    while _group_alive(process) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextlib.contextmanager
def running_mlflow_server(root: Path) -> Iterator[str]:
    """Run ``mlflow server`` with its stores under ``root``; yield its tracking URI."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    uri = f"http://{HOST}:{port}"
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",  # uvicorn then serves in one process, without a supervisor
    ]
    log = root / "mlflow-server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            cwd=root,  # anything the server writes to its working directory stays under root
            env={**os.environ, **SERVER_ENVIRONMENT},
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Its own session, hence its own process group: one killpg stops it and its children,
            # and a Ctrl-C in the terminal running pytest does not reach it directly.
            start_new_session=True,
        )
    try:
        _wait_until_healthy(process, uri, log)
        yield uri
    finally:
        _stop(process)
