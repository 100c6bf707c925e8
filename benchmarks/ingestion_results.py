"""The ingestion section's results: its rows, its checks and the notes printed under them.

Torch-free, as ``benchmarks.ingestion``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from benchmarks.ingestion_runs import NaiveRun, ProjectRun
from benchmarks.input_data import BenchmarkInput
from benchmarks.remote_storage import RemoteStorage
from benchmarks.timing import ratio

COLUMNS = [
    "method",
    "workers",
    "read_ahead",
    "pairs",
    "seconds",
    "pairs_per_s",
    "steady_pairs_per_s",
    "runs",
    "steady_range",
    "warm_pairs_per_s",
    "speedup",
    "read_mib_per_pair",
    "file_mib_per_pair",
    "read_fraction",
]
REMOTE_COLUMNS = [
    "method",
    "workers",
    "read_ahead",
    "pairs",
    "steady_pairs_per_s",
    "runs",
    "steady_range",
    "speedup",
    "pairs_per_s",
    "reads",
    "storage_wait_s",
    "read_mib_per_pair",
]
NAIVE = "naive: pandas.read_parquet + merge + PIL"
PROJECT = "project: plan_segment_jobs + ingest_segments"


@dataclass(frozen=True)
class IngestionRow:
    """One case: its median run, and the steady rates of all its runs.

    ``steady_pairs_per_s`` leaves out the process pool's start-up: the time the workers
    spent inside ``ingest_segment``, shared among them (the baseline has no pool).
    """

    method: str
    baseline: bool
    workers: int
    read_ahead: int | None  # None for the baseline
    pairs: int
    seconds: float
    pairs_per_s: float
    steady_pairs_per_s: float
    runs: int
    steady_range: str
    warm_pairs_per_s: float | None  # None for the baseline, or where no worker did two
    read_mib_per_pair: float
    file_mib_per_pair: float
    read_fraction: float
    bytes_read: int
    reads: int
    speedup: float = 1.0  # steady rate over the baseline's
    storage_wait_s: float | None = None  # on remote storage: the requests' wait, one by one

    def table_row(self) -> dict[str, Any]:
        row = asdict(self)
        if self.baseline:
            row.update(read_ahead="-", warm_pairs_per_s="-")
        return row


def case_row(
    run: NaiveRun | ProjectRun, rates: list[float], file_bytes: int, read_ahead: int | None
) -> IngestionRow:
    """The row of a baseline run (``read_ahead`` None) or a project run."""
    baseline = isinstance(run, NaiveRun)
    steady = run.seconds if isinstance(run, NaiveRun) else run.steady_seconds
    pairs = max(run.pairs, 1)
    return IngestionRow(
        method=NAIVE if baseline else PROJECT,
        baseline=baseline,
        workers=1 if isinstance(run, NaiveRun) else run.workers,
        read_ahead=read_ahead,
        pairs=run.pairs,
        seconds=run.seconds,
        pairs_per_s=run.pairs / run.seconds if run.seconds else 0.0,
        steady_pairs_per_s=run.pairs / steady if steady else 0.0,
        runs=len(rates),
        steady_range=f"{min(rates):.1f}-{max(rates):.1f}",
        warm_pairs_per_s=None if isinstance(run, NaiveRun) else run.warm_rate,
        read_mib_per_pair=run.bytes_read / pairs / 2**20,
        file_mib_per_pair=file_bytes / pairs / 2**20,
        read_fraction=run.bytes_read / file_bytes if file_bytes else 0.0,
        bytes_read=run.bytes_read,
        reads=run.reads,
    )


def with_speedups(rows: list[IngestionRow]) -> list[IngestionRow]:
    """Each row with its steady rate over the first row's (the baseline's)."""
    base = rows[0].steady_pairs_per_s
    return [replace(row, speedup=row.steady_pairs_per_s / base) for row in rows]


@dataclass(frozen=True)
class OutputAgreement:
    """How far the project's shards are from the baseline's arrays, pair by pair."""

    pairs_matched: int
    label_agreement: float  # share of label pixels equal
    image_mean_abs_diff: float  # grey levels


@dataclass(frozen=True)
class WorkerScaling:
    """Most workers' rates over one worker's: steady, and without first segments (warm).

    A ratio is None where a rate is missing (no worker ingested two segments).
    """

    workers: tuple[int, int]
    steady: float | None
    warm: float | None

    @classmethod
    def of(cls, project_rows: list[IngestionRow]) -> WorkerScaling:
        one, most = project_rows[0], project_rows[-1]
        return cls(
            (one.workers, most.workers),
            ratio(most.steady_pairs_per_s, one.steady_pairs_per_s),
            ratio(most.warm_pairs_per_s, one.warm_pairs_per_s),
        )

    def note(self) -> str:
        """How the rate grows from 1 to N workers ("n/a" where not measured)."""
        one, most = self.workers
        if one == most:
            return "one worker count only: no scaling measured (--workers)"

        def shown(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.2f}x"

        return f"from {one} to {most} workers: {shown(self.steady)} steady, {shown(self.warm)} warm"


@dataclass(frozen=True)
class RowGroups:
    """Image row groups in all, and those holding a labelled frame (the ones read)."""

    total: int
    with_labelled_frames: int

    @classmethod
    def of(cls, data: BenchmarkInput) -> RowGroups:
        per_group = data.config.frames_per_row_group
        return cls(
            sum(s.row_groups for s in data.segments),
            sum(len({frame // per_group for frame in s.labelled_frames}) for s in data.segments),
        )


@dataclass(frozen=True)
class RemoteIngestion:
    """Baseline and project on the modelled remote storage; rows as in the local table."""

    storage: RemoteStorage
    model: str
    rows: tuple[IngestionRow, ...]

    def table_rows(self) -> list[dict[str, Any]]:
        return [row.table_row() for row in self.rows]

    def title(self) -> str:
        return f"1b. Ingestion from modelled remote storage ({self.model})"

    def notes(self, groups: RowGroups) -> list[str]:
        return [
            "the same files and cases, read through fsspec like gcsfs with its cache off "
            "(benchmarks.remote_storage.RemoteFile; gcsfs's default adaptive prefetcher is "
            "not modelled), each request waiting as a ranged GET from an object store would "
            "(a sleep: the CPU is free meanwhile); GCS itself cannot be reached from here",
            "reads: requests made; read_mib_per_pair: bytes fetched; storage_wait_s: what "
            "the requests would wait in all if nothing overlapped them",
            "read_ahead 1 reads the next image row group on a thread while the current "
            "one decodes; a segment's first read cannot be hidden, so the gain grows with "
            f"the labelled row groups per segment ({groups.with_labelled_frames} over "
            "all segments here)",
            "the last row runs twice as many worker processes as the one before (by "
            "default the cores): while some wait for bytes, the others decode; each process "
            "gets its own bandwidth here (a shared network limit is not modelled)",
            "pairs_per_s is wall-clock, with the process pool's start-up",
        ]


@dataclass(frozen=True)
class IngestionBenchmark:
    """The section's results, as ``__main__`` prints them and writes them to JSON.

    ``rows`` holds the baseline first, then the project per worker count, fewest first.
    """

    size: tuple[int, int]
    repeats: int
    rows: tuple[IngestionRow, ...]
    naive_read_seconds: float
    naive_decode_seconds: float
    naive_decode_pairs_per_s: float
    agreement: OutputAgreement
    decode_only_pairs_per_s: float  # decode_pair alone on one core: one worker's ceiling
    label_decode_ms: dict[str, float]  # per label PNG decoder, on the same labels
    single_worker_share_of_decode_only: float
    image_row_groups: RowGroups
    labelled_pairs_in_input: int
    worker_scaling: WorkerScaling
    remote: RemoteIngestion | None  # None: remote storage not measured

    @property
    def project(self) -> tuple[IngestionRow, ...]:
        return self.rows[1:]

    @property
    def fastest_project(self) -> IngestionRow:
        """The project's case with the highest steady rate."""
        return max(self.project, key=lambda row: row.steady_pairs_per_s)

    def table_rows(self) -> list[dict[str, Any]]:
        return [row.table_row() for row in self.rows]

    def title(self) -> str:
        height, width = self.size
        return f"1. Ingestion: labelled pairs to {height}x{width} shards"

    def notes(self) -> list[str]:
        agreement, groups = self.agreement, self.image_row_groups
        return [
            "naive: pandas.read_parquet of whole files (all columns), merge, full-size PIL decode "
            "+ convert('RGB'), BILINEAR / NEAREST, // divisor; keeps arrays in memory "
            "(it joins first, so it decodes labelled pairs only)",
            "project: key columns, then the image column of labelled row groups only, "
            "reduced-scale JPEG decode, full-resolution class histogram, writes shards",
            f"naive split: read + merge {self.naive_read_seconds:.1f} s, decode "
            f"{self.naive_decode_seconds:.1f} s ({self.naive_decode_pairs_per_s:.1f} pairs/s)",
            "steady_pairs_per_s leaves out the process pool's start-up (time inside "
            "ingest_segment, shared among the workers, at least the slowest segment's); "
            "speedup compares steady rates",
            f"each case ran {self.repeats} time(s); its row is the run with the "
            "median steady rate, steady_range spans them all",
            "warm_pairs_per_s leaves out each worker's first segment (in a pool, a fresh "
            "process's one-off costs: codecs, first-touch memory; 1 worker runs in this "
            "process) and takes the wall-clock span of the rest; a real run gives each "
            "worker hundreds of segments",
            self.worker_scaling.note(),
            f"decoders alone (decode_pair on pairs already in memory, 1 core): "
            f"{self.decode_only_pairs_per_s:.1f} pairs/s, the ceiling of one worker "
            f"here; 1 worker reaches "
            f"{100 * self.single_worker_share_of_decode_only:.0f}% of it (the rest is "
            "reading, BROTLI and writing shards)",
            "label PNG alone, ms each on the same labels: "
            + ", ".join(f"{name} {ms:.1f}" for name, ms in self.label_decode_ms.items()),
            f"image row groups holding labelled frames: {groups.with_labelled_frames} of "
            f"{groups.total} (read_fraction follows from it)",
            f"same pairs as the baseline: {agreement.pairs_matched}; labels equal on "
            f"{100 * agreement.label_agreement:.3f}% of pixels; image mean abs difference "
            f"{agreement.image_mean_abs_diff:.2f} grey levels (reduced-scale decode + cv2 "
            "vs full decode + PIL)",
        ]
