"""Partitions: one dynamic partition per dataset, so a new problem file becomes a new partition."""

from __future__ import annotations

from dagster import DagsterInstance, DynamicPartitionsDefinition

DATASET_PARTITIONS_NAME = "dataset"
dataset_partitions = DynamicPartitionsDefinition(name=DATASET_PARTITIONS_NAME)


def ensure_dataset_partitions(instance: DagsterInstance, names: list[str] | tuple[str, ...]) -> list[str]:
    """Add the datasets that are not yet partitions; returns the ones added."""
    existing = set(instance.get_dynamic_partitions(DATASET_PARTITIONS_NAME))
    new = [n for n in dict.fromkeys(names) if n not in existing]
    if new:
        instance.add_dynamic_partitions(DATASET_PARTITIONS_NAME, new)
    return new
