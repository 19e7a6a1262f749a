"""``report``: one page over the warehouse (leaderboard, the paper's table and ours, behaviour, trees).

Its materialization carries the leaderboard as a table (benchmark rows x stage columns), the
report files as path entries, the truncation warnings (not logged again: each eval_scores partition
already warned in the run), and the page itself with its images inlined (a relative image link
would be broken in the UI).
"""

import dagster as dg
from dagster import AssetExecutionContext

from astro_pipeline.defs.assets.common import work_dir
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.evaluate.leaderboard import stage_grid
from astro_pipeline.evaluate.report import build_report

TABLES = ("eval_scores", "eval_generations", "train_metrics", "tree_nodes", "traces")


def leaderboard_table(board) -> dg.TableMetadataValue:
    columns, rows = stage_grid(board)
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns])
    keep = lambda text: text.replace(" ± ", "\u00a0±\u00a0")  # noqa: E731  (no line break inside a cell)
    return dg.MetadataValue.table(records=[dg.TableRecord(dict(zip(columns, map(keep, r)))) for r in rows],
                                  schema=schema)


@dg.asset(
    group_name="evaluation",
    deps=["eval_scores"],
    kinds={"html", "duckdb"},
    description="Leaderboard, the paper's table beside ours, search behaviour and trees, in $ASTRO_HOME/report/.",
)
def report(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
    store, warehouse, recipe = astro.store(), astro.warehouse(), astro.recipe()
    present = set(warehouse.refresh())
    searched = ", ".join(f"'{d}'" for d in recipe.section("datasets").train) or "''"
    queries = {"tree_nodes": f"SELECT * FROM tree_nodes WHERE dataset IN ({searched})",
               "traces": f"SELECT * FROM traces WHERE dataset IN ({searched})"}
    tables = {t: warehouse.query(queries.get(t, f"SELECT * FROM {t}")) if t in present else None for t in TABLES}
    out = work_dir(store, "report") if not store.is_local else store.path("report")
    result = build_report(tables["eval_scores"], tables["eval_generations"], tables["train_metrics"], out,
                          title=f"ASTRO evaluation report ({recipe.name} recipe)", tree_nodes=tables["tree_nodes"],
                          traces=tables["traces"], benchmarks=recipe.section("datasets").benchmarks,
                          stages=recipe.section("evaluate").stages)
    if not store.is_local:
        store.put_dir(out, "report")
    for plot, why in result.skipped.items():
        context.log.debug(f"report: plot {plot} skipped: {why}")  # the page says so too
    return dg.MaterializeResult(metadata={
        "report": dg.MetadataValue.path(store.uri("report/report.html")),
        "markdown": dg.MetadataValue.path(store.uri("report/report.md")),
        "leaderboard": leaderboard_table(result.leaderboard) if result.leaderboard.height else
        dg.MetadataValue.text("no scores yet"),
        "warnings": dg.MetadataValue.md("\n".join(f"- {w}" for w in result.warnings) or "none"),
        "plots": len(result.plot_paths) + len(result.tree_paths),
        "report page": dg.MetadataValue.md(result.markdown_embedded),
    })
