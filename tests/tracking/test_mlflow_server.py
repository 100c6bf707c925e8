"""The test MLflow server records a run (params, metrics, artifacts) and serves the registry."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient


def test_the_server_keeps_a_run_its_artifacts_and_a_model_version(
    mlflow_server: str, tmp_path: Path
):
    # A client bound to the server, never the global tracking URI: other tests share the process.
    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    experiment_id = client.create_experiment("smoke")
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    client.log_param(run_id, "learning_rate", "0.01")
    client.log_metric(run_id, "loss", 1.0, step=0)
    client.log_metric(run_id, "loss", 0.5, step=1)
    note = tmp_path / "note.txt"
    note.write_text("hello")
    # The artifact travels through the server's proxied artifact store (mlflow-artifacts:/).
    client.log_artifact(run_id, str(note), artifact_path="notes")
    client.set_terminated(run_id)

    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED"
    assert finished.info.artifact_uri.startswith("mlflow-artifacts:/")
    assert finished.data.params == {"learning_rate": "0.01"}
    history = client.get_metric_history(run_id, "loss")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 0.5)]
    assert [a.path for a in client.list_artifacts(run_id, "notes")] == ["notes/note.txt"]
    fetched = client.download_artifacts(run_id, "notes/note.txt", str(tmp_path / "back"))
    assert Path(fetched).read_text() == "hello"

    client.create_registered_model("smoke-model")
    version = client.create_model_version(
        "smoke-model", source=f"{finished.info.artifact_uri}/notes", run_id=run_id
    )
    assert version.version == "1"
    assert client.get_registered_model("smoke-model").latest_versions[0].run_id == run_id
