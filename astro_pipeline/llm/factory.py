"""``make_backend``: the configured backend for a model reference (imports the backend lazily)."""

from __future__ import annotations

import os

from astro_pipeline.llm.protocol import Backend
from astro_pipeline.llm.settings import BackendSettings


def make_backend(settings: BackendSettings, model_path: str | os.PathLike[str]) -> Backend:
    """A ready backend for ``model_path`` (local folder, s3:// folder or hub id)."""
    if settings.name == "transformers":
        from astro_pipeline.llm.transformers_backend import TransformersBackend

        return TransformersBackend(model_path, settings)
    if settings.name == "vllm":
        from astro_pipeline.llm.vllm_backend import VLLMBackend

        return VLLMBackend(model_path, settings)
    raise ValueError(f"unknown backend {settings.name!r}")
