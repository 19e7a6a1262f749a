"""``problems[dataset]``: load, normalize and quarantine one dataset's problems."""

import dagster as dg
from dagster import AssetExecutionContext

from astro_pipeline.config import to_dict
from astro_pipeline.data.load import load_problems
from astro_pipeline.data.registry import DatasetRegistry
from astro_pipeline.defs.assets.common import markdown_table
from astro_pipeline.defs.partitions import dataset_partitions
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.provenance import fingerprint, write_manifest
from astro_pipeline.warehouse import publish


@dg.asset(
    partitions_def=dataset_partitions,
    group_name="data",
    kinds={"polars", "duckdb"},
    tags={"astro/datasets": "all"},
    description="Normalized problems of one dataset (warehouse table problems); rejected rows go to quarantine.",
)
def problems(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
    dataset = context.partition_key
    recipe, store = astro.recipe(), astro.store()
    source = DatasetRegistry(store).get(dataset)
    settings = recipe.section("problems")
    # every row is loaded or quarantined; datasets.limits cuts where problems are used (read_problems)
    limit = recipe.section("datasets").limit_for(dataset)
    loaded = load_problems(source, settings, synthetic_settings=recipe.section("synthetic"))

    warehouse = astro.warehouse()
    path = publish(warehouse, "problems", dataset, loaded.problems)
    publish(warehouse, "quarantine", dataset, loaded.quarantine, group="problems")
    settings_used = {"source": source.to_dict(), "problems": to_dict(settings)}
    write_manifest(store, path, settings=settings_used, fingerprint=fingerprint(settings_used), stats=loaded.stats)
    for reason, count in loaded.stats["quarantine_reasons"].items():
        context.log.warning(f"{dataset}: {count} row(s) quarantined: {reason}")
    return dg.MaterializeResult(
        metadata={
            "dataset": dataset,
            "source": source.location or source.kind,
            "problems": len(loaded.problems),
            "quarantined": len(loaded.quarantine),
            **({"used_downstream": f"the first {limit} (datasets.limits)"} if limit is not None else {}),
            "stats": dg.MetadataValue.json(loaded.stats),
            "path": store.uri(path),
            "preview": dg.MetadataValue.md(markdown_table(loaded.problems.select("problem_id", "problem", "answer"),
                                                          max_rows=5)),
        }
    )

