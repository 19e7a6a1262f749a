"""Where each model stage lives in the artifact store, and how a stage's model is found."""

from astro_pipeline.defs.resources import AstroResource

# stage name -> model folder in the store (base is special: a pretrained recipe names its model)
STAGE_MODEL_PATHS = {
    "base": "models/base",
    "sft": "models/sft",
    "rl": "models/rl",
    "direct_sft": "models/direct_sft",
    "direct_rl": "models/direct_rl",
}
STAGES = tuple(STAGE_MODEL_PATHS)


def stage_model_ref(astro: AstroResource, stage: str) -> str:
    """The model of a stage: a local folder, an s3:// URI (fetched to a cache on load) or a hub id."""
    if stage not in STAGE_MODEL_PATHS:
        raise KeyError(f"unknown model stage {stage!r}; known: {list(STAGES)}")
    base = astro.recipe().section("base_model")
    if stage == "base" and base.kind == "pretrained":
        return base.model
    return astro.store().model_ref(STAGE_MODEL_PATHS[stage])
