"""``base_model``: the demo's tiny Llama trained from scratch, or a configured pretrained model."""

import shutil

import dagster as dg
from dagster import AssetExecutionContext

from astro_pipeline.config import to_dict
from astro_pipeline.defs.assets.common import curves_markdown, metrics_frame, work_dir
from astro_pipeline.defs.models import STAGE_MODEL_PATHS, reusable_model, stage_model_ref
from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.provenance import fingerprint, write_manifest
from astro_pipeline.train.base_eval import measure_pass_at_1
from astro_pipeline.train.model_manifest import folder_checksums
from astro_pipeline.train.pretrain import train_base_model
from astro_pipeline.warehouse import publish

MODEL_PATH = STAGE_MODEL_PATHS["base"]


@dg.asset(
    group_name="models",
    kinds={"pytorch", "transformers"},
    tags={"astro/gpu": "true"},
    description="The policy model every stage starts from (demo: a tiny Llama trained here from scratch).",
)
def base_model(context: AssetExecutionContext, astro: AstroResource) -> dg.MaterializeResult:
    recipe, store = astro.recipe(), astro.store()
    settings, synthetic = recipe.section("base_model"), recipe.section("synthetic")
    phrases = recipe.section("cloning").phrases  # the demo tokenizer and plain documents hold the bank's words
    demo = settings.kind == "demo"
    made_by = {"base_model": to_dict(settings), "synthetic": to_dict(synthetic) if demo else None,
               "phrases": to_dict(phrases) if demo else None}
    fp = fingerprint(made_by)
    # a pretrained base is never published into the home (no .complete), so it is checked again each time
    previous = reusable_model(store, "base", fp, context.log)
    if previous is not None:
        context.log.info(f"base_model: settings unchanged (fingerprint {fp}); reusing {store.uri(MODEL_PATH)}")
        metadata = {**previous["metadata"], "reused": True}
        metadata["model"] = store.uri(MODEL_PATH)  # where it is now: the home may have been copied or moved
        return dg.MaterializeResult(metadata=metadata, data_version=dg.DataVersion(fp))

    scratch = work_dir(store, "base_model")
    local = scratch / "model"
    shutil.rmtree(local, ignore_errors=True)
    curve: list[tuple[int, str, float]] = []

    def on_log(step: int, values: dict) -> None:
        curve.extend((step, name, value) for name, value in values.items())
        context.log.info(f"pretrain step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))

    summary = train_base_model(settings, synthetic, local, on_log=on_log, phrases=phrases)
    model_dir = summary.get("model_dir") or str(local)
    evaluation = measure_pass_at_1(model_dir, settings, synthetic, recipe.section("backend")) if settings.kind == "demo" else None
    if evaluation is not None:
        curve.append((summary.get("steps", settings.steps), "synthetic_test_pass_at_1", evaluation["pass_at_1"]))
        context.log.info(f"base model pass@1 on synthetic_test: {evaluation['pass_at_1']:.3f}")
    if settings.kind == "demo":
        store.put_dir(local, MODEL_PATH)
    frame = metrics_frame("pretrain", curve)
    publish(astro.warehouse(), "train_metrics", "pretrain", frame)

    metadata = {
        "model": store.uri(MODEL_PATH) if settings.kind == "demo" else settings.model,
        "kind": settings.kind,
        "fingerprint": fp,
        **{k: summary[k] for k in ("n_params", "vocab_size", "steps", "final_loss", "train_wall_s", "tokens_seen",
                                   "bf16_autocast", "precision_reason") if k in summary},
    }
    if evaluation is not None:
        metadata.update({
            "synthetic_test_pass_at_1": evaluation["pass_at_1"],
            "synthetic_test_pass_at_1_stderr": evaluation["stderr"],
            "synthetic_test_greedy": evaluation.get("greedy"),
            "pass_at_1_measurement": dg.MetadataValue.json(
                {k: evaluation[k] for k in ("n_problems", "n_samples", "temperature", "top_p", "max_new_tokens", "seed",
                                            "mixed_fraction", "truncated_fraction", "mean_tokens")}),
        })
    if curve:
        metadata["loss_curve"] = dg.MetadataValue.md(curves_markdown(frame, "pretrain", ("loss",), scratch))
    metadata = {k: v for k, v in metadata.items() if v is not None}
    write_manifest(store, MODEL_PATH, settings=made_by, fingerprint=fp, summary=summary, evaluation=evaluation,
                   metadata={k: (v.value if isinstance(v, dg.MetadataValue) else v) for k, v in metadata.items()},
                   # checksums of what was published (a pretrained model is not copied into the home)
                   files=folder_checksums(local) if settings.kind == "demo" else None)
    return dg.MaterializeResult(metadata={**metadata, "reused": False}, data_version=dg.DataVersion(fp))


def base_model_ref(astro: AstroResource) -> str:
    """Where downstream stages load the base model from."""
    return stage_model_ref(astro, "base")
