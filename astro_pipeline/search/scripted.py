"""A scripted policy backend: a deterministic TEST DOUBLE of the ``Backend`` protocol.

It is not a model. A ``script(problem, prefix, sample_index) -> text`` says how the "policy"
continues a prefix (the whole rest of a solution, steps separated by "\\n\\n"); the double then
applies the protocol's generation rules exactly as a real backend does:

* a stop string cuts the text before its first occurrence (finish "stop", ``stop_string`` set);
* otherwise more than ``max_new_tokens`` tokens cut it (finish "length");
* otherwise the whole text is returned as if the model emitted EOS (finish "stop", no stop string).

Tokens are whitespace-separated words; a sample's log-probability is ``logprob(text, i)``
(default: -0.5 per token - 0.1 * sample index, so earlier and shorter samples are likelier). Every
call's requests are recorded in ``calls`` so tests can check prefixes, stop strings and batching.
Used by the search's unit tests and usable by asset tests that need a search without a model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from astro_pipeline.llm.protocol import GenerationRequest, Sample

Script = Callable[[str, str, int], str]


def default_logprob(text: str, index: int) -> float:
    return -0.5 * len(text.split()) - 0.1 * index


class ScriptedBackend:
    name = "scripted"

    def __init__(self, script: Script, logprob: Callable[[str, int], float] = default_logprob) -> None:
        self.script = script
        self.logprob = logprob
        self.calls: list[list[GenerationRequest]] = []

    def render(self, request: GenerationRequest) -> str:
        if request.prompt is not None:
            head = request.prompt
        else:
            head = "\n".join(f"<{m['role']}> {m['content']}" for m in request.messages or ())
        return f"{head}\n<assistant> {request.prefix}"

    @staticmethod
    def _problem(request: GenerationRequest) -> str:
        if request.prompt is not None:
            return request.prompt
        users = [m["content"] for m in request.messages or () if m["role"] == "user"]
        return users[-1] if users else ""

    def _sample(self, request: GenerationRequest, index: int) -> Sample:
        text = self.script(self._problem(request), request.prefix, index)
        p = request.params
        cuts = [(text.find(s), s) for s in p.stop if s and s in text]
        if cuts:
            pos, stop = min(cuts)
            text, finish, stop_string = text[:pos], "stop", stop
        else:
            finish, stop_string = "stop", None
        words = text.split()
        if len(words) > p.max_new_tokens:
            text, finish, stop_string = " ".join(words[: p.max_new_tokens]), "length", None
            words = words[: p.max_new_tokens]
        return Sample(text=text, finish_reason=finish, n_tokens=len(words), logprob=self.logprob(text, index),
                      stop_string=stop_string)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[list[Sample]]:
        self.calls.append(list(requests))
        return [[self._sample(r, i) for i in range(r.params.n)] for r in requests]
