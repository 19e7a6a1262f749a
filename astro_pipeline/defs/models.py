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
# stage name -> the asset that builds its model
STAGE_ASSETS = {"base": "base_model", "sft": "sft_model", "rl": "rl_model",
                "direct_sft": "direct_sft_model", "direct_rl": "direct_rl_model"}
# a stage's model starts from this stage's model
STAGE_UPSTREAM = {"sft": "base", "rl": "sft", "direct_sft": "base", "direct_rl": "direct_sft"}


def built_stages(recipe) -> list[str]:
    """The model stages a recipe builds: those it evaluates plus the ones they start from."""
    wanted: list[str] = []
    for stage in recipe.section("evaluate").stages:
        if stage not in STAGE_ASSETS:
            raise ValueError(f"evaluate.stages: unknown model stage {stage!r}; known: {list(STAGES)}")
        while stage is not None and stage not in wanted:
            wanted.append(stage)
            stage = STAGE_UPSTREAM.get(stage)
    return [s for s in STAGES if s in wanted]


def stage_model_ref(astro: AstroResource, stage: str) -> str:
    """The model of a stage: a local folder, an s3:// URI (fetched to a cache on load) or a hub id."""
    if stage not in STAGE_MODEL_PATHS:
        raise KeyError(f"unknown model stage {stage!r}; known: {list(STAGES)}")
    base = astro.recipe().section("base_model")
    if stage == "base" and base.kind == "pretrained":
        return base.model
    return astro.store().model_ref(STAGE_MODEL_PATHS[stage])
