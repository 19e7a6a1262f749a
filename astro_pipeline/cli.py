"""The ``astro`` command: run the pipeline, open the UI, manage datasets, verify, query, benchmark.

Design: argparse with one small function per sub-command; each calls into the domain packages
(or, for ``run``/``ui``/``datasets``, the thin Dagster layer). Heavy imports happen inside the
command that needs them so ``astro --help`` and ``astro verify`` stay quick.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

BENCHMARKS = {
    # name -> "module:function"; each returns one JSON-able dict with its figure, baseline and ratio.
    # All but verify take a model folder (--model); without one they use the demo base model in
    # $ASTRO_HOME when it exists, else (generate, eval, sft, grpo) a small randomly initialised Llama.
    "verify": "astro_pipeline.bench.verify:bench_verify",
    "generate": "astro_pipeline.bench.generate:bench_generate",
    "mcts": "astro_pipeline.bench.mcts:bench_mcts_demo",
    "eval": "astro_pipeline.bench.eval:bench_eval",
    "sft": "astro_pipeline.bench.sft:bench_sft",
    "grpo": "astro_pipeline.bench.grpo:bench_grpo",
    "search_efficiency": "astro_pipeline.bench.search_efficiency:bench_search_efficiency",
}
NEEDS_TRAINED_POLICY = ("mcts", "search_efficiency")  # a random model finds no answers to count
# --backend vllm: benchmarks of the vLLM backend (run from an environment with vLLM: .venv-vllm on CPU)
VLLM_BENCHMARKS = {
    "generate": "astro_pipeline.bench.generate_vllm:bench_generate_vllm",
}


def cmd_run(args: argparse.Namespace) -> int:
    from astro_pipeline.cli_run import step_line, summary_lines
    from astro_pipeline.defs.runner import RunInterrupted, run_recipe
    from astro_pipeline.runlog import quiet_known_warnings

    if not args.verbose:
        quiet_known_warnings()
    try:
        results = run_recipe(args.recipe, selection=args.select, partition=args.partition, verbose=args.verbose)
    except RunInterrupted as stop:  # Ctrl-C / SIGTERM: what ran, then the shell's code for the signal
        if stop.outcomes:
            print("\n".join(step_line(r) for r in stop.outcomes), flush=True)
        print(f"astro run: {stop}; no further runs started", file=sys.stderr)
        return 128 + stop.signum
    print("\n".join(summary_lines(results)), flush=True)
    failed = [r for r in results if not r.success and not r.skipped]
    return 1 if failed or any(not ok for r in results for ok in r.checks.values()) else 0


def cmd_ui(args: argparse.Namespace) -> int:
    from astro_pipeline.defs.ui import serve

    return serve(recipe=args.recipe, host=args.host, port=args.port)


def cmd_datasets(args: argparse.Namespace) -> int:
    from astro_pipeline.defs.datasets import add_dataset, list_datasets, remove_dataset

    if args.action == "add":
        source = add_dataset(args.name, args.source, problem_field=args.problem_field,
                             answer_field=args.answer_field, id_field=args.id_field)
        print(json.dumps(source, indent=2))
    elif args.action == "remove":
        removed = remove_dataset(args.name)
        print(f"removed {args.name} and {len(removed)} file(s) of its tables")
    else:
        import polars as pl

        from astro_pipeline.warehouse.format import render

        rows = [{"name": r["name"], "kind": r["kind"], "location": r["location"] or "(generated)",
                 "split": r["split"], "fields": f"{r['problem_field']} / {r['answer_field'] or '(boxed solution)'}",
                 "description": r["description"]} for r in list_datasets()]
        print(render(pl.DataFrame(rows), args.format, hint="--format markdown prints everything"))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from astro_pipeline.verify import verify_file, verify_one

    if args.file:
        print(json.dumps(verify_file(args.file, gold_field=args.gold_field, response_field=args.response_field)))
        return 0
    if args.gold is None or args.response is None:
        print("astro verify: give --gold and --response, or --file", file=sys.stderr)
        return 2
    print(json.dumps(verify_one(args.gold, args.response).to_dict()))
    return 0


def _warehouse(command: str):
    """The warehouse, or None after saying on one line that there is none (nothing is created)."""
    from astro_pipeline.warehouse.errors import open_warehouse

    warehouse, missing = open_warehouse()
    if warehouse is None:
        print(f"astro {command}: {missing}", file=sys.stderr)
    return warehouse


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb
    import polars as pl

    from astro_pipeline.warehouse.errors import one_line, present_tables
    from astro_pipeline.warehouse.format import render

    if (warehouse := _warehouse("sql")) is None:
        return 2
    query = args.query
    try:
        df = warehouse.run_file(query) if query.strip().lower().endswith(".sql") else warehouse.query(query)
    except duckdb.Error as exc:
        print(f"astro sql: {one_line(exc, present_tables(warehouse))}", file=sys.stderr)
        return 2
    if args.format == "csv":
        nested = [c for c, t in df.schema.items() if t.is_nested()]
        # CSV has no nested values: lists and structs are written as JSON text
        df = df.with_columns(pl.col(c).map_elements(lambda v: json.dumps(v.to_list() if hasattr(v, "to_list") else v,
                                                                         default=str), return_dtype=pl.String)
                             for c in nested)
        sys.stdout.write(df.write_csv())
    elif args.format == "json":
        sys.stdout.write(json.dumps(df.to_dicts(), default=str) + "\n")
    else:
        print(render(df, args.format, max_rows=args.rows))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from astro_pipeline.explore.show import ProblemNotFound, show_problem
    from astro_pipeline.warehouse.errors import present_tables
    from astro_pipeline.warehouse.format import terminal_width

    if (warehouse := _warehouse("show")) is None:
        return 2
    try:
        text = show_problem(warehouse.query, set(present_tables(warehouse)), args.problem_id, dataset=args.dataset,
                            width=args.width or terminal_width(), lines=args.lines)
    except ProblemNotFound as exc:
        print(f"astro show: {exc.args[0]}", file=sys.stderr)
        return 2
    sys.stdout.write(text)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    from astro_pipeline.storage import ArtifactStore

    table = VLLM_BENCHMARKS if args.backend == "vllm" else BENCHMARKS
    if getattr(args, "prefix_reuse", False):
        if args.name != "generate" or args.backend != "transformers":
            print("astro bench: --prefix-reuse applies to generate with the transformers backend", file=sys.stderr)
            return 2
        table = {"generate": "astro_pipeline.bench.generate:bench_prefix_reuse"}
    if args.name not in table:
        print(f"astro bench {args.name}: no --backend vllm variant (only: {', '.join(sorted(table))})", file=sys.stderr)
        return 2
    module, _, func = table[args.name].partition(":")
    bench = getattr(importlib.import_module(module), func)
    if args.name == "verify":
        result = bench()
    else:
        model = args.model
        store = ArtifactStore.from_env()
        if model is None and store.is_local and store.exists("models/base/.complete"):
            model = store.path("models/base")
        if model is None and args.name in NEEDS_TRAINED_POLICY:
            print(f"astro bench {args.name}: needs a trained policy: --model DIR, or run `make run` first", file=sys.stderr)
            return 2
        result = bench(model)
        result.setdefault("model", model or "random tiny Llama")
    name = args.name if args.backend == "transformers" else f"{args.name} --backend {args.backend}"
    if getattr(args, "prefix_reuse", False):
        name += " --prefix-reuse"
    print(json.dumps({"bench": name, **result}, default=str))
    return 0


def cmd_recipe(args: argparse.Namespace) -> int:
    from astro_pipeline.recipe import load_recipe
    from astro_pipeline.recipe_explain import recipe_text
    from astro_pipeline.warehouse.format import terminal_width

    recipe = load_recipe(args.recipe)
    if args.format == "json":
        print(json.dumps(recipe.resolved(), indent=2))
    else:
        sys.stdout.write(recipe_text(recipe, explain=args.explain, width=terminal_width()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astro", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="materialize the recipe's assets through Dagster")
    run.add_argument("--recipe", default="demo", help="recipe name (recipes/NAME.yaml) or path")
    run.add_argument("--select", default=None, help="asset selection: Dagster clauses joined by commas, e.g. 'problems,+search_trees'")
    run.add_argument("--partition", default=None,
                     help="only this partition key: a dataset (a registered one outside the recipe too) or a model stage")
    run.add_argument("--verbose", action="store_true", help="DEBUG log with Dagster's events and every library warning")
    run.set_defaults(func=cmd_run)

    ui = sub.add_parser("ui", help="start the Dagster webserver and daemon on 127.0.0.1")
    ui.add_argument("--recipe", default="demo")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)
    ui.set_defaults(func=cmd_ui)

    ds = sub.add_parser("datasets", help="list, add or remove problem datasets (partitions)")
    ds_sub = ds.add_subparsers(dest="action", required=True)
    ls = ds_sub.add_parser("list", help="built-in and user datasets, as a table")
    ls.add_argument("--format", choices=("table", "markdown"), default="table")
    add = ds_sub.add_parser("add", help="register a JSONL/JSON/Parquet/CSV file, s3:// URI or hf:ID[:split]")
    add.add_argument("name")
    add.add_argument("source")
    add.add_argument("--problem-field", default=None)
    add.add_argument("--answer-field", default=None)
    add.add_argument("--id-field", default=None)
    rm = ds_sub.add_parser("remove", help="unregister a user dataset")
    rm.add_argument("name")
    ds.set_defaults(func=cmd_datasets)

    ver = sub.add_parser("verify", help="judge a response against a reference answer")
    ver.add_argument("--gold", default=None)
    ver.add_argument("--response", default=None)
    ver.add_argument("--file", default=None, help="a JSONL file: prints counts per verdict")
    ver.add_argument("--gold-field", default="answer")
    ver.add_argument("--response-field", default="solution")
    ver.set_defaults(func=cmd_verify)

    sql = sub.add_parser("sql", help="query the DuckDB warehouse (read-only)")
    sql.add_argument("query", help="SQL text or a .sql file (names in sql/ work too)")
    sql.add_argument("--format", choices=("table", "records", "markdown", "csv", "json"), default="table",
                     help="table: fits the terminal width, one record per block when too wide; records: always "
                          "one record per block; markdown: a Markdown table; csv, json: everything, unformatted")
    sql.add_argument("--rows", type=int, default=40, help="most rows printed by table/records (csv, json: all)")
    sql.set_defaults(func=cmd_sql)

    show = sub.add_parser("show", help="one problem: its search tree, traces, CoT examples, every stage's answers")
    show.add_argument("problem_id")
    show.add_argument("--dataset", default=None, help="the dataset, when the id is in several")
    show.add_argument("--width", type=int, default=None, help="columns (default: the terminal's)")
    show.add_argument("--lines", type=int, default=6, help="lines shown of each completion")
    show.set_defaults(func=cmd_show)

    bench = sub.add_parser("bench", help="measure a stage against its baseline; prints JSON")
    bench.add_argument("name", choices=sorted(BENCHMARKS))
    bench.add_argument("--model", default=None, help="model folder (default: the demo base model in $ASTRO_HOME)")
    bench.add_argument("--backend", choices=("transformers", "vllm"), default="transformers",
                       help="vllm: the vLLM backend against the transformers one (generate only; needs vLLM)")
    bench.add_argument("--prefix-reuse", action="store_true",
                       help="generate: the transformers backend with prefix reuse off, prompt and prefix on one "
                            "recorded MCTS request set (ratio = prefix tokens/s over off)")
    bench.set_defaults(func=cmd_bench)

    rec = sub.add_parser("recipe", help="print a recipe's resolved settings as YAML")
    rec.add_argument("recipe", nargs="?", default="demo")
    rec.add_argument("--explain", action="store_true", help="each field's help text above it; (set) marks the recipe's own")
    rec.add_argument("--format", choices=("yaml", "json"), default="yaml")
    rec.set_defaults(func=cmd_recipe)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"astro {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
