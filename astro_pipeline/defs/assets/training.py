"""``sft_model`` / ``rl_model`` and their Direct-arm ablations ``direct_sft_model`` / ``direct_rl_model``.

One factory per stage kind keeps the four assets identical in wiring: each fingerprints what makes
it (settings, the upstream model's fingerprint, the training data), reuses a finished model when
that fingerprint is unchanged, otherwise trains with resumable checkpoints in a work folder of the
artifact root (so a killed run continues), publishes the folder atomically, and writes its metric
curve to the warehouse table train_metrics (one file per run). Its materialization shows the curves
inline (``curve: loss``, ``curve: reward``, ...) and links the run's TensorBoard folder. Which
stages a recipe builds is ``evaluate.stages`` (and the stages they start from): the definitions
leave out the model assets of the others.
"""

import dataclasses
import hashlib
import json
import shutil

import dagster as dg
import polars as pl
from dagster import AssetCheckExecutionContext, AssetExecutionContext

from astro_pipeline.cloning import count_reflections
from astro_pipeline.config import to_dict
from astro_pipeline.cloning.budget import check_budget
from astro_pipeline.defs.assets.common import curves_markdown, inline_curves, metrics_frame, work_dir
from astro_pipeline.defs.assets.common import publish_metrics, read_problems, run_curves, train_corpus
from astro_pipeline.defs.models import STAGE_MODEL_PATHS, load_model_dir, reusable_model
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.defs.tags import STAGE_TAG
from astro_pipeline.llm.factory import make_backend
from astro_pipeline.provenance import fingerprint, read_manifest, write_manifest
from astro_pipeline.runlog import Throttle
from astro_pipeline.train.model_manifest import content_digest, folder_checksums
from astro_pipeline.train.rl import select_prompts, train_rl
from astro_pipeline.train.rl_guards import check_guards
from astro_pipeline.train.runs import RunSummary, run_folder
from astro_pipeline.train.sft import train_sft
from astro_pipeline.verify import BatchVerifier


def _frame_hash(df: pl.DataFrame) -> str:
    return hashlib.sha1(df.write_csv().encode()).hexdigest()[:16]


def _reused(context, astro: AstroResource, stage: str, fp: str) -> dg.MaterializeResult | None:
    store = astro.store()
    previous = reusable_model(store, stage, fp, context.log)
    if previous is None:
        return None
    context.log.info(f"{stage}: inputs, settings and files unchanged (fingerprint {fp}); reusing the model")
    # the folder's address is where it is now: a copied or moved home must not report the old one
    return dg.MaterializeResult(metadata={**previous.get("metadata", {}), **run_curves(astro.warehouse(), stage, fp),
                                          "model": store.uri(STAGE_MODEL_PATHS[stage]), "reused": True},
                                data_version=dg.DataVersion(fp))


class MetricLog:
    """Per-step metrics appended to a file in the work folder, so a resumed run keeps the steps
    logged before the kill; steps logged twice (between the last checkpoint and the kill) keep the
    latest value. Keyed by the run's fingerprint: a changed run starts a new log."""

    def __init__(self, context, stage: str, run_dir) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.context, self.stage, self.path = context, stage, run_dir / "astro_metrics.jsonl"
        self.progress = Throttle(context.log.info)

    def __call__(self, step: int, values: dict) -> None:
        numeric = {k: float(v) for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        with self.path.open("a") as fh:
            fh.write(json.dumps({"step": step, **numeric}) + "\n")
        shown = {k: numeric[k] for k in ("loss", "reward", "completions/mean_length", "learning_rate") if k in numeric}
        self.progress(f"{self.stage} step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in shown.items()))

    def rows(self) -> list[tuple[int, str, float]]:
        latest: dict[tuple[int, str], float] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                entry = json.loads(line)
                step = entry.pop("step")
                latest.update({(step, name): value for name, value in entry.items()})
        return [(step, name, value) for (step, name), value in sorted(latest.items())]


def _publish_model(context, astro: AstroResource, stage: str, local_out, fp: str, made_by: dict,
                   summary: RunSummary, metrics: MetricLog, metadata: dict) -> dg.MaterializeResult:
    store = astro.store()
    curve = metrics.rows()
    store.put_dir(local_out, STAGE_MODEL_PATHS[stage])
    frame = metrics_frame(stage, curve, run=fp)
    publish_metrics(astro.warehouse(), frame, stage, fp)
    curves = ("reward", "length") if "rl" in stage else ("loss",)
    plots = curves_markdown(frame, stage, curves, metrics.path.parent)
    metadata = {"model": store.uri(STAGE_MODEL_PATHS[stage]), "fingerprint": fp, **metadata}
    write_manifest(store, STAGE_MODEL_PATHS[stage], settings=made_by, fingerprint=fp, summary=summary.record,
                   metadata=metadata, files=folder_checksums(local_out))
    tensorboard = metrics.path.parent / "tensorboard"
    return dg.MaterializeResult(
        metadata={**metadata, **inline_curves(frame), "curves (full size)": dg.MetadataValue.md(plots),
                  **({"tensorboard": dg.MetadataValue.path(str(tensorboard))} if tensorboard.is_dir() else {}),
                  "reused": False},
        data_version=dg.DataVersion(fp))


def _model_asset(name: str, stage: str, deps: list[str], description: str):
    """The decorator of one model asset (the Dagster ``kinds`` are the tools it runs, not corpus kinds)."""
    return dg.asset(name=name, group_name="models", deps=deps, kinds={"pytorch", "transformers"},
                    tags={STAGE_TAG: stage, "astro/gpu": "true"}, description=description)


def _fresh_run(context, store, stage: str, fp: str) -> tuple:
    """An empty local model folder, the run's checkpoint folder (kept: a killed run resumes there) and
    its metric log."""
    scratch = work_dir(store, stage)
    local_out = scratch / "model"
    shutil.rmtree(local_out, ignore_errors=True)
    run_dir = run_folder(scratch, fp)
    return local_out, run_dir, MetricLog(context, stage, run_dir)


def make_sft_asset(name: str, stage: str, upstream: str, corpus_kinds: tuple[str, ...] | None) -> dg.AssetsDefinition:
    @_model_asset(name, stage, ["cot_corpus", upstream],
                  f"Supervised fine-tuning of the base model on the CoT corpus ({stage}).")
    def _sft(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
        recipe, store = astro.recipe(), astro.store()
        settings = recipe.section("sft")
        if corpus_kinds is not None:  # the Direct-SFT ablation trains on the count-matched direct arm
            settings = dataclasses.replace(settings, kinds=corpus_kinds)
        corpus = train_corpus(astro)
        if corpus is None:
            raise FileNotFoundError("no CoT corpus of the recipe's train datasets; materialize cot_corpus first")
        base = read_manifest(store, STAGE_MODEL_PATHS["base"]) or {}
        # the base model's file checksums too: a base rebuilt with the same settings is another model
        system_prompt = recipe.section("evaluate").system_prompt  # train on the prompt the model is evaluated with
        made_by = {"sft": to_dict(settings), "base_model": base.get("fingerprint"), "base_files": content_digest(base),
                   "corpus": _frame_hash(corpus), **({"system_prompt": system_prompt} if system_prompt else {})}
        fp = fingerprint(made_by)
        if (reused := _reused(context, astro, stage, fp)) is not None:
            return reused
        local_out, run_dir, metrics = _fresh_run(context, store, stage, fp)
        summary = train_sft(load_model_dir(astro, "base"), corpus, settings, str(local_out),
                            work_dir=str(run_dir), on_log=metrics, system_prompt=system_prompt)
        return _publish_model(context, astro, stage, local_out, fp, made_by, summary, metrics,
                              summary.headline("train_examples", "tokens_per_s", "resumed_from_step"))

    return _sft


def make_rl_asset(name: str, stage: str, upstream_stage: str, upstream: str) -> dg.AssetsDefinition:
    @_model_asset(name, stage, ["problems", upstream],
                  f"GRPO from the {upstream_stage} model with a verifiable +1/-1 reward ({stage}).")
    def _rl(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
        recipe, store = astro.recipe(), astro.store()
        settings, cloning = recipe.section("rl"), recipe.section("cloning")
        problems = pl.concat([read_problems(store, recipe, d) for d in recipe.section("datasets").train],
                             how="vertical_relaxed")
        start = read_manifest(store, STAGE_MODEL_PATHS[upstream_stage]) or {}
        system_prompt = recipe.section("evaluate").system_prompt  # train on the prompt the model is evaluated with
        made_by = {"rl": to_dict(settings), upstream_stage: start.get("fingerprint"),
                   f"{upstream_stage}_files": content_digest(start), "problems": _frame_hash(problems),
                   **({"system_prompt": system_prompt} if system_prompt else {})}
        fp = fingerprint(made_by)
        if (reused := _reused(context, astro, stage, fp)) is not None:
            return reused
        corpus = train_corpus(astro)
        if corpus is not None:  # RL must not be paid to cut the reflections it was taught
            check_budget(corpus, settings.max_completion_length, "rl.max_completion_length")
        start_dir = load_model_dir(astro, upstream_stage)
        local_out, run_dir, metrics = _fresh_run(context, store, stage, fp)
        with BatchVerifier(recipe.section("verify")) as verifier:
            prompts = select_prompts(make_backend(recipe.section("backend"), start_dir), problems, settings, verifier,
                                     system_prompt)
            context.log.info(f"{stage}: {prompts.height} prompts of moderate difficulty out of {problems.height}")
            summary = train_rl(start_dir, prompts, settings, str(local_out), work_dir=str(run_dir),
                               on_log=metrics, verifier=verifier, system_prompt=system_prompt,
                               reflection_counter=lambda text: count_reflections(text, cloning))
        if summary.stopped_by_guard:
            context.log.warning(f"{stage}: training stopped by a guard at step {summary.steps}: "
                                + "; ".join(summary.stop_reasons))
        return _publish_model(context, astro, stage, local_out, fp, made_by, summary, metrics, {
            "prompts": prompts.height, **summary.headline(), "stopped_by_guard": summary.stopped_by_guard})

    return _rl


def make_rl_check(asset: dg.AssetsDefinition, stage: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=asset, name=f"{stage}_training_stable",
                    description="Completion length, truncation and reward stayed within the recipe's guard bounds.")
    def _check(context: AssetCheckExecutionContext, astro: AstroResource) -> dg.AssetCheckResult:
        run = (read_manifest(astro.store(), STAGE_MODEL_PATHS[stage]) or {}).get("fingerprint")
        rows = astro.warehouse().query(  # the run that made the current model, not an earlier one
            f"SELECT step, name, value FROM train_metrics WHERE stage = '{stage}' AND run = '{run}' ORDER BY step")
        history = [{"step": step, **{n: v for _, n, v in group.iter_rows()}}
                   for (step,), group in rows.group_by("step", maintain_order=True)]
        problems = check_guards(history, astro.recipe().section("rl"))
        return dg.AssetCheckResult(passed=not problems, metadata={
            "steps": len(history), "problems": dg.MetadataValue.md("\n".join(f"- {p}" for p in problems) or "none")})

    return _check


sft_model = make_sft_asset("sft_model", "sft", "base_model", corpus_kinds=None)
direct_sft_model = make_sft_asset("direct_sft_model", "direct_sft", "base_model", corpus_kinds=("direct_arm",))
rl_model = make_rl_asset("rl_model", "rl", "sft", "sft_model")
direct_rl_model = make_rl_asset("direct_rl_model", "direct_rl", "direct_sft", "direct_sft_model")
# stage -> its model asset and, for RL stages, its stability check (definitions keep the stages a recipe builds)
MODEL_ASSETS = {"sft": sft_model, "direct_sft": direct_sft_model, "rl": rl_model, "direct_rl": direct_rl_model}
RL_CHECKS = {"rl": make_rl_check(rl_model, "rl"), "direct_rl": make_rl_check(direct_rl_model, "direct_rl")}
