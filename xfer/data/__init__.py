"""Offline datasets (one per game): sharded, checksummed, atomically written (XTRA seed 003 sec 3.1).

Write with :class:`DatasetWriter` / :func:`write_dataset`, read with :class:`DatasetReader`, and draw
memory-bounded batches over many games with :class:`OfflineSampler`. The layout and the manifest
schema are in :mod:`xfer.data.format`.
"""

from xfer.data.format import (
    MANIFEST_FILE,
    SCHEMA_VERSION,
    CorruptShardError,
    DatasetError,
    DatasetMismatchError,
    DatasetNotFoundError,
    InvalidManifestError,
    Manifest,
    SchemaVersionError,
    ShardInfo,
    atari_env_info,
    package_versions,
    shard_file_name,
)
from xfer.data.reader import DatasetReader
from xfer.data.sampler import OfflineSampler
from xfer.data.writer import DEFAULT_SHARD_TRANSITIONS, DatasetWriter, write_dataset

__all__ = [
    "DEFAULT_SHARD_TRANSITIONS",
    "MANIFEST_FILE",
    "SCHEMA_VERSION",
    "CorruptShardError",
    "DatasetError",
    "DatasetMismatchError",
    "DatasetNotFoundError",
    "DatasetReader",
    "DatasetWriter",
    "InvalidManifestError",
    "Manifest",
    "OfflineSampler",
    "SchemaVersionError",
    "ShardInfo",
    "atari_env_info",
    "package_versions",
    "shard_file_name",
    "write_dataset",
]
