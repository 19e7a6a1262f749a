"""The ``vllm`` backend: the same protocol on a vLLM engine (GPU: the ``vllm`` extra; CPU: vLLM's
CPU build in the environment ``make vllm-env`` makes).

Design choices:

* The mapping between the protocol and vLLM is pure functions (``vllm_sampling_kwargs``,
  ``vllm_prompt``, ``sample_from_output``) over plain values and duck-typed outputs, so it is unit
  tested without vLLM; only ``VLLMBackend`` itself touches the engine.
* We render and tokenize the prompt ourselves (the model's own tokenizer and chat template, the same
  rules as the transformers backend) and pass token ids, so both backends condition on exactly the
  same tokens.
* Prefix caching is on by default: MCTS siblings and rollouts share long prompts. Tensor-parallel
  size, memory share, KV-cache size and the context limit come from ``BackendSettings``; the engine
  options, and what the CPU build needs changed, are built in ``vllm_options`` (each change is
  logged with its reason).
* Seeds: each request's seed goes to vLLM as is (``n`` samples get seed, seed+1, ...), so a request's
  samples do not depend on what else is in the batch, on GPU and on CPU (where ``vllm_options``
  turns chunked prefill off for exactly this). They are vLLM's samples, not the transformers
  backend's: the same seed gives different samples on the two backends (greedy ones are the same).
* Log-probabilities: we ask for the sampled token's log-probability (``logprobs=0``) and the engine
  is started with ``logprobs_mode="raw_logprobs"`` where the installed vLLM knows it, i.e. before
  temperature and top-p, as the protocol asks.
* The engine runs in worker processes that vLLM starts by spawn: a script that builds this backend
  needs an ``if __name__ == "__main__":`` guard. ``close()`` stops them.
* The returned text excludes the stop string (``include_stop_str_in_output=False``); the token count
  is every generated token, including the one that completed the stop string or EOS.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astro_pipeline.llm.model_ref import resolve_model_ref
from astro_pipeline.llm.prompt import encode as encode_prompt
from astro_pipeline.llm.prompt import render as render_prompt
from astro_pipeline.llm.protocol import GenerationRequest, Sample, SamplingParams, check_params
from astro_pipeline.llm.settings import BackendSettings
from astro_pipeline.llm.stops import truncate_at_stop
from astro_pipeline.llm.vllm_options import engine_options, numa_nodes

log = logging.getLogger(__name__)


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


def supported_engine_options(vllm: Any) -> set[str]:
    """Option names the installed vLLM accepts: ``LLM``'s own parameters and ``EngineArgs``' fields."""
    names = set(inspect.signature(vllm.LLM.__init__).parameters)
    engine_args = getattr(getattr(getattr(vllm, "engine", None), "arg_utils", None), "EngineArgs", None)
    if engine_args is not None and dataclasses.is_dataclass(engine_args):
        names |= {f.name for f in dataclasses.fields(engine_args)}
    return names


class VLLMBackend:
    """Generation protocol on a vLLM engine (see the module docstring)."""

    name = "vllm"

    def __init__(self, model_path: str | Path, settings: BackendSettings | None = None) -> None:
        try:
            import vllm
        except ImportError as exc:  # pragma: no cover - exercised only where vLLM is missing
            raise ImportError(
                "the vllm backend needs vLLM: on GPUs pip install 'astro_pipeline[vllm]'; on CPU run from the "
                "environment `make vllm-env` makes (.venv-vllm)"
            ) from exc
        from transformers import AutoTokenizer

        self.settings = settings or BackendSettings(name="vllm")
        path = resolve_model_ref(model_path, self.settings.model_cache_dir or None)
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=self.settings.trust_remote_code)
        import vllm.engine.arg_utils  # noqa: F401  (EngineArgs: the engine's option names)
        from vllm.platforms import current_platform

        self._vllm = vllm
        self.on_cpu = bool(current_platform.is_cpu())
        options = engine_options(self.settings, path, supported=supported_engine_options(vllm),
                                 on_cpu=self.on_cpu, nodes=numa_nodes())
        for note in options.notes:
            log.warning("vllm backend: %s", note)
        self.engine_notes = options.notes
        self.engine_kwargs = options.kwargs
        self.llm = vllm.LLM(**options.kwargs)

    def render(self, request: GenerationRequest) -> str:
        return render_prompt(self.tokenizer, request)

    def encode(self, request: GenerationRequest) -> list[int]:
        return encode_prompt(self.tokenizer, request)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Sample]]:
        for r, req in enumerate(requests):
            check_params(r, req.params)
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

    def reset_prefix_cache(self) -> None:
        """Forget every cached prefix (benchmarks time a request set from a cold cache)."""
        self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Stop the engine's processes (they also stop when this process exits)."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None:
            core.shutdown()
