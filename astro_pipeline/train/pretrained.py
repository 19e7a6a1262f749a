"""kind=pretrained: resolve the configured model reference and check that it loads.

Design: nothing is copied or trained. The reference is resolved (a local folder as is, an
``s3://`` folder through the local model cache, a hub id passed on untouched) and its config and
tokenizer are loaded, which catches a wrong path or a broken folder before any search runs. The
weights are not loaded here (a 70B model would take minutes and all the memory); the backend loads
them. The returned ``model_dir`` is what later stages give to ``make_backend``.
"""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, AutoTokenizer

from astro_pipeline.llm.prompt import prompt_text
from astro_pipeline.llm.model_ref import resolve_model_ref


def check_pretrained(ref: str, cache_dir: str | None = None, trust_remote_code: bool = False) -> dict[str, Any]:
    """Resolve ``ref`` and load its config and tokenizer; raise if either fails."""
    path = resolve_model_ref(ref, cache_dir)
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if has_template:
        # fail here, not in the middle of a search, if the template cannot render a user turn
        prompt_text(tokenizer, "1 + 1")
    return {
        "kind": "pretrained",
        "model": ref,
        "model_dir": path,
        "model_type": config.model_type,
        "architectures": list(getattr(config, "architectures", None) or []),
        "vocab_size": len(tokenizer),
        "has_chat_template": has_template,
        "eos_token": tokenizer.eos_token,
    }
