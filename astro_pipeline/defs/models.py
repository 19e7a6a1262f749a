"""Where each model stage lives in the artifact store, and how a stage's model is found and checked."""

from astro_pipeline.defs.resources import AstroResource
from astro_pipeline.llm.model_ref import resolve_model_ref
from astro_pipeline.provenance import read_manifest
from astro_pipeline.storage import ArtifactStore
from astro_pipeline.train.model_manifest import CorruptModelError, verify_folder

# stage name -> model folder in the store (base is special: a pretrained recipe names its model)
STAGE_MODEL_PATHS = {
    "base": "models/base",
    "sft": "models/sft",
    "rl": "models/rl",
    "direct_sft": "models/direct_sft",
    "direct_rl": "models/direct_rl",
}
STAGES = tuple(STAGE_MODEL_PATHS)


def _pretrained_base(astro: AstroResource, stage: str) -> bool:
    return stage == "base" and astro.recipe().section("base_model").kind == "pretrained"


def stage_model_ref(astro: AstroResource, stage: str) -> str:
    """The model of a stage: a local folder, an s3:// URI (fetched to a cache on load) or a hub id."""
    if stage not in STAGE_MODEL_PATHS:
        raise KeyError(f"unknown model stage {stage!r}; known: {list(STAGES)}")
    if _pretrained_base(astro, stage):
        return astro.recipe().section("base_model").model
    return astro.store().model_ref(STAGE_MODEL_PATHS[stage])


def load_model_dir(astro: AstroResource, stage: str) -> str:
    """What to load a stage's model from, checked against its manifest's checksums first.

    A model this pipeline published is verified file by file (the local folder, or the cached copy
    of an s3:// one), so a truncated or overwritten file fails here with the folder named. A
    configured pretrained base model lives outside the artifact root and is loaded as configured.
    """
    ref = stage_model_ref(astro, stage)
    local = resolve_model_ref(ref)
    if not _pretrained_base(astro, stage):
        store = astro.store()
        verify_folder(local, read_manifest(store, STAGE_MODEL_PATHS[stage]), where=store.uri(STAGE_MODEL_PATHS[stage]))
    return local


def reusable_model(store: ArtifactStore, stage: str, fingerprint: str, log) -> dict | None:
    """The manifest of a finished model made from the same inputs whose files still match it, else None.

    A mismatch (a truncated or overwritten file) is logged and means the model is built again.
    """
    rel = STAGE_MODEL_PATHS[stage]
    previous = read_manifest(store, rel)
    if not previous or previous.get("fingerprint") != fingerprint or not store.exists(f"{rel}/.complete"):
        return None
    try:
        verify_folder(store.path(rel), previous, where=store.uri(rel), fs=store.fs)
    except CorruptModelError as exc:
        log.warning(f"{stage}: {exc}; training it again")
        return None
    return previous
