"""``astro datasets``: the user dataset registry plus the matching Dagster dynamic partitions."""

from __future__ import annotations

from astro_pipeline.data.registry import DatasetRegistry
from astro_pipeline.defs.instance import dagster_instance
from astro_pipeline.defs.models import STAGES
from astro_pipeline.defs.partitions import DATASET_PARTITIONS_NAME, ensure_dataset_partitions
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.warehouse import Warehouse
from astro_pipeline.warehouse.tables import dataset_artifacts


def _registry() -> DatasetRegistry:
    return DatasetRegistry(ArtifactStore.from_env())


def add_dataset(name: str, source: str, **fields: str | None) -> dict:
    """Register a dataset and add its partition, so the UI and the sensor see it at once."""
    added = _registry().add(name, source, **fields)
    ensure_dataset_partitions(dagster_instance(), [name])
    return added.to_dict()


def remove_dataset(name: str) -> list[str]:
    """Unregister a user dataset, delete every table file made for it, drop its partition.

    Its rows must not stay behind in problems, tree_nodes, eval_scores...: a dataset that is gone
    would otherwise still count in every query. Returns the relative paths removed.
    """
    registry = _registry()
    registry.remove(name)
    store = registry.store
    removed = dataset_artifacts(store, name, STAGES)
    for rel in removed:
        store.remove(rel)
    store.remove(f"tables/tree_nodes/{name}", recursive=True)
    if removed:
        Warehouse(store).refresh()  # views of tables left without files are dropped
    instance = dagster_instance()
    if name in instance.get_dynamic_partitions(DATASET_PARTITIONS_NAME):
        instance.delete_dynamic_partition(DATASET_PARTITIONS_NAME, name)
    return removed


def list_datasets() -> list[dict]:
    registry = _registry()
    return [registry.get(n).to_dict() for n in registry.names()]
