"""``astro datasets``: the user dataset registry plus the matching Dagster dynamic partitions."""

from __future__ import annotations

from dagster import DagsterInstance

from astro_pipeline.data.registry import DatasetRegistry
from astro_pipeline.defs.partitions import DATASET_PARTITIONS_NAME, ensure_dataset_partitions
from astro_pipeline.storage import ArtifactStore


def _registry() -> DatasetRegistry:
    return DatasetRegistry(ArtifactStore.from_env())


def add_dataset(name: str, source: str, **fields: str | None) -> dict:
    """Register a dataset and add its partition, so the UI and the sensor see it at once."""
    added = _registry().add(name, source, **fields)
    ensure_dataset_partitions(DagsterInstance.get(), [name])
    return added.to_dict()


def remove_dataset(name: str) -> None:
    _registry().remove(name)
    instance = DagsterInstance.get()
    if name in instance.get_dynamic_partitions(DATASET_PARTITIONS_NAME):
        instance.delete_dynamic_partition(DATASET_PARTITIONS_NAME, name)


def list_datasets() -> list[dict]:
    registry = _registry()
    return [registry.get(n).to_dict() for n in registry.names()]
