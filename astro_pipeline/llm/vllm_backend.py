"""The ``vllm`` backend (GPU, the ``vllm`` extra): the same protocol on a vLLM engine.

Design choices:

* The mapping between the protocol and vLLM is pure functions (``vllm_sampling_kwargs``,
  ``vllm_prompt``, ``sample_from_output``) over plain values and duck-typed outputs, so it is unit
  tested without vLLM; only ``VLLMBackend`` itself touches the engine.
* We render and tokenize the prompt ourselves (the model's own tokenizer and chat template, the same
  rules as the transformers backend) and pass token ids, so both backends condition on exactly the
  same tokens.
* Prefix caching is on by default: MCTS siblings and rollouts share long prompts. Tensor-parallel
  size, memory share and the context limit come from ``BackendSettings``.
* Log-probabilities: we ask for the sampled token's log-probability (``logprobs=0``) and the engine
  is started with ``logprobs_mode="raw_logprobs"`` where the installed vLLM knows it, i.e. before
  temperature and top-p, as the protocol asks.
* The returned text excludes the stop string (``include_stop_str_in_output=False``); the token count
  is every generated token, including the one that completed the stop string or EOS.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astro_pipeline.llm.model_ref import resolve_model_ref
from astro_pipeline.llm.protocol import GenerationRequest, Sample, SamplingParams
from astro_pipeline.llm.settings import BackendSettings
from astro_pipeline.llm.stops import truncate_at_stop


def vllm_sampling_kwargs(params: SamplingParams) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one request."""
    if params.max_new_tokens < 1:
        raise ValueError("vLLM needs max_new_tokens >= 1 (a 0-token request is answered without the engine)")
    return {
        "n": params.n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
        "stop": list(params.stop),
        "seed": params.seed,
        "logprobs": 0,
        "include_stop_str_in_output": False,
        "skip_special_tokens": True,
    }


def vllm_prompt(token_ids: Sequence[int]) -> dict[str, list[int]]:
    """A vLLM ``TokensPrompt``: the engine does not re-tokenize our rendered prompt."""
    return {"prompt_token_ids": list(token_ids)}


def _summed_logprob(completion: Any) -> float:
    if getattr(completion, "cumulative_logprob", None) is not None:
        return float(completion.cumulative_logprob)
    total = 0.0
    for token, entry in zip(completion.token_ids, completion.logprobs or []):
        lp = entry[token]
        total += float(getattr(lp, "logprob", lp))
    return total


def sample_from_output(completion: Any, stop: Sequence[str]) -> Sample:
    """One vLLM ``CompletionOutput`` (text, token_ids, finish_reason, stop_reason, logprobs) as a Sample."""
    if completion.finish_reason not in ("stop", "length"):
        raise RuntimeError(f"vLLM finished a sample with {completion.finish_reason!r}")
    # vLLM already cuts at the stop string; cutting again is a no-op then and a guard otherwise
    text, hit = truncate_at_stop(completion.text, stop) if stop else (completion.text, None)
    stop_string = completion.stop_reason if isinstance(completion.stop_reason, str) else hit
    return Sample(
        text=text,
        finish_reason="stop" if completion.finish_reason == "stop" or stop_string else "length",
        n_tokens=len(completion.token_ids),
        logprob=_summed_logprob(completion),
        stop_string=stop_string,
    )


def engine_kwargs(settings: BackendSettings, model_path: str, supported: set[str] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``vllm.LLM``; ``supported`` (the installed LLM's parameter names, when
    known) drops options an older vLLM does not have instead of failing."""
    kwargs: dict[str, Any] = {
        "model": model_path,
        "tensor_parallel_size": settings.tensor_parallel_size,
        "gpu_memory_utilization": settings.gpu_memory_utilization,
        "enable_prefix_caching": settings.enable_prefix_caching,
        "trust_remote_code": settings.trust_remote_code,
        "enforce_eager": settings.enforce_eager,
        "dtype": settings.dtype,
        "logprobs_mode": "raw_logprobs",
    }
    if settings.max_model_len:
        kwargs["max_model_len"] = settings.max_model_len
    if supported is not None:
        kwargs = {k: v for k, v in kwargs.items() if k in supported or k == "model"}
    return kwargs


def _supported_engine_options(vllm: Any) -> set[str]:
    """Option names the installed vLLM accepts: ``LLM``'s own parameters and ``EngineArgs``' fields."""
    names = set(inspect.signature(vllm.LLM.__init__).parameters)
    try:
        import dataclasses

        from vllm.engine.arg_utils import EngineArgs

        names |= {f.name for f in dataclasses.fields(EngineArgs)}
    except (ImportError, TypeError):  # pragma: no cover - layout of other vLLM versions
        pass
    return names


class VLLMBackend:
    """Generation protocol on a vLLM engine (see the module docstring)."""

    name = "vllm"

    def __init__(self, model_path: str | Path, settings: BackendSettings | None = None) -> None:
        try:
            import vllm
        except ImportError as exc:  # pragma: no cover - exercised only where vLLM is missing
            raise ImportError("the vllm backend needs the vllm extra: pip install 'astro_pipeline[vllm]'") from exc
        from transformers import AutoTokenizer

        self.settings = settings or BackendSettings(name="vllm")
        path = resolve_model_ref(model_path, self.settings.model_cache_dir or None)
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=self.settings.trust_remote_code)
        self._vllm = vllm
        self.llm = vllm.LLM(**engine_kwargs(self.settings, path, _supported_engine_options(vllm)))

    def render(self, request: GenerationRequest) -> str:
        if request.messages is not None:
            text = self.tokenizer.apply_chat_template(
                [dict(m) for m in request.messages], tokenize=False, add_generation_prompt=True
            )
        else:
            text = request.prompt or ""
        return text + request.prefix

    def encode(self, request: GenerationRequest) -> list[int]:
        return self.tokenizer(self.render(request), add_special_tokens=request.messages is None)["input_ids"]

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Sample]]:  # pragma: no cover - GPU
        out: list[list[Sample]] = [[] for _ in requests]
        live = [i for i, r in enumerate(requests) if r.params.max_new_tokens > 0]
        for i, r in enumerate(requests):
            if r.params.max_new_tokens == 0:
                out[i] = [Sample("", "length", 0, 0.0) for _ in range(r.params.n)]
        if live:
            results = self.llm.generate(
                [vllm_prompt(self.encode(requests[i])) for i in live],
                sampling_params=[self._vllm.SamplingParams(**vllm_sampling_kwargs(requests[i].params)) for i in live],
                use_tqdm=False,
            )
            for i, result in zip(live, results):
                out[i] = [sample_from_output(c, requests[i].params.stop) for c in result.outputs]
        return out
