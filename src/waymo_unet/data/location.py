"""A folder on any fsspec filesystem: a local path or a bucket prefix, plus storage options."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import fsspec
from fsspec.core import strip_protocol, url_to_fs
from fsspec.implementations.local import LocalFileSystem
from fsspec.utils import get_protocol


@dataclass(frozen=True)
class Location:
    """Small and picklable, so worker processes and Dask workers can write there themselves.

    ``storage_options`` may hold credentials: they are left out of equality and repr.
    """

    root: str
    storage_options: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        # A local folder is made absolute here: the processes that write into it (a Dask
        # worker, a torchrun rank) may run in another working directory. fsspec's public
        # strip_protocol does it (as LocalFileSystem names paths: absolute, '/'-separated).
        if get_protocol(self.root) in LocalFileSystem.protocol:
            object.__setattr__(self, "root", strip_protocol(self.root))

    @property
    def filesystem(self) -> fsspec.AbstractFileSystem:
        return url_to_fs(self.root, **self.storage_options)[0]

    def join(self, *parts: str) -> str:
        """The path of ``parts`` under the root ('/'-joined, as fsspec expects)."""
        return "/".join(part for part in (self.root.rstrip("/"), *parts) if part)
