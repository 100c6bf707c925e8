"""All benchmarks on one generated input, in one run: ``python -m benchmarks [--quick]``.

1. ingestion: notebook baseline against the project's ingestion (1 and N workers)
2. training input: DataLoader over the shards against decoding parquet per item
3. model step: fp32 against mixed precision, channels_last (and compile)
4. inference: eager model against the exported deployable model, with a logit check
5. evaluation: Waymo's metric at the labels' full size, ``evaluate_raw_files`` against a
   notebook loop (PIL at full size, one model call per image, ``np.bincount``)
6. full-run estimate: the rates above applied to the real dataset's counts

Prints one table per section, headed by the machine, and writes every section's typed
result as JSON (``--json``, default ``benchmarks/results/latest.json``). The options and
profiles are in ``benchmarks.profile``, the sections in ``benchmarks.sections``; what
the results have shown, and how to run each benchmark, in ``benchmarks/README.md``.

Nothing here imports torch at import time: the ingestion workers are spawned processes
that re-import this module, and need no torch.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import sections
from benchmarks.input_data import write_input
from benchmarks.machine import describe_machine, format_table, load_average
from benchmarks.profile import Profile, make_profile, parse_args

logger = logging.getLogger("benchmarks")


def run(profile: Profile, device: Any, work_dir: Path, input_dir: Path | None) -> dict[str, Any]:
    """Every section on one generated input; returns what the JSON file holds."""
    start = time.perf_counter()
    machine = describe_machine()
    print(
        "Benchmarks (" + profile.name + ") on: " + ", ".join(f"{k}={v}" for k, v in machine.items())
    )
    data = write_input(input_dir or work_dir / "input", profile.input)
    summary = data.summary()
    sections.print_section(
        "Input: synthetic Waymo v2 files at full size (waymo_unet.data.synthetic)",
        format_table(
            [{"quantity": k, "value": v} for k, v in summary.items()], ["quantity", "value"]
        ),
        [
            "cameras 1-3 1920x1280, 4-5 1920x886 JPEG; uint16 panoptic PNG; BROTLI; frames "
            f"in order; labelled runs of {profile.input.run_length} frames",
            f"{profile.input.distinct_frames} rendered frames per camera and segment; the "
            "others are shifted copies, so every JPEG differs",
        ],
    )
    results: dict[str, Any] = {"machine": machine, "profile": asdict(profile), "input": summary}
    ingested, shards = sections.run_ingestion(data, profile, work_dir)
    loader = sections.run_training_input(data, shards, profile)
    step = sections.run_model_step(profile, device)
    infer = sections.run_inference(profile, device)
    evaluation = sections.run_evaluation(data, profile, device)
    estimate = sections.run_estimate(profile, machine, device, ingested, loader, step, infer)
    results.update(
        (name, asdict(section))
        for name, section in (
            ("ingestion", ingested),
            ("training_input", loader),
            ("model_step", step),
            ("inference", infer),
            ("evaluation", evaluation),
            ("estimate", estimate),
        )
    )
    results["load_average_1m_at_end"] = load_average()
    results["wall_seconds"] = time.perf_counter() - start
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr
    )
    from waymo_unet.devices import resolve_device

    device = resolve_device(args.device)
    profile = make_profile(args, device.type == "cuda")
    with tempfile.TemporaryDirectory(prefix="waymo_unet_benchmarks_") as work_dir:
        results = run(profile, device, Path(work_dir), args.input_dir)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1, default=str))
    load = results["machine"]["load_average_1m"]
    print(
        f"\nTotal wall time {results['wall_seconds']:.0f} s; load average {load} at the start, "
        f"{results['load_average_1m_at_end']} at the end ({results['machine']['cores']} cores); "
        f"results in {args.json}"
    )
    if not results["inference"]["passed"]:
        logger.error("The exported model's logits differ from the eager model's beyond tolerance")
        return 1
    agreement = results["evaluation"]["agreement"]
    if not (agreement["ground_truth_equal"] and agreement["same_images"]):
        logger.error("The evaluation's two paths scored different images or ground truth")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
