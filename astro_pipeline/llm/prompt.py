"""The prompt contract: how a problem becomes the chat messages and the text a model sees.

One function builds the messages of a problem, ``chat_messages(problem, system_prompt)``:
``[{"role": "system", ...}]`` when a system prompt is set, then one user turn holding the problem.
Search, evaluation, SFT, RL (prompt selection and GRPO), the base-model check and the
self-evaluation filter all build their prompts with it, so a recipe that sets a system prompt
trains on the prompt it evaluates with. The text is always the tokenizer's chat template with the
assistant header (``render``); a request without messages sends its raw ``prompt`` instead, and a
request's ``prefix`` (a partial answer) follows the rendered prompt.
"""

from __future__ import annotations

from typing import Any

Messages = tuple[dict[str, str], ...]


def chat_messages(problem: str, system_prompt: str = "") -> Messages:
    """The messages a model is prompted with for ``problem`` (the system turn only when one is set)."""
    system = ({"role": "system", "content": system_prompt},) if system_prompt else ()
    return (*system, {"role": "user", "content": problem})


def chat_example(problem: str, completion: str, system_prompt: str = "") -> dict[str, list[dict[str, str]]]:
    """A conversational prompt-completion record (TRL's format) of ``problem`` and its ``completion``."""
    return {"prompt": list(chat_messages(problem, system_prompt)),
            "completion": [{"role": "assistant", "content": completion}]}


def render_messages(tokenizer: Any, messages: Messages | list[dict[str, str]]) -> str:
    """The text of ``messages`` under the tokenizer's chat template, ending in the assistant header."""
    return tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False, add_generation_prompt=True)


def prompt_text(tokenizer: Any, problem: str, system_prompt: str = "") -> str:
    """The rendered prompt of one problem: what every stage feeds the model before its answer."""
    return render_messages(tokenizer, chat_messages(problem, system_prompt))


def render(tokenizer: Any, request: Any) -> str:
    """The prompt text of a ``GenerationRequest``: its messages rendered (or its raw prompt), then its prefix."""
    text = render_messages(tokenizer, request.messages) if request.messages is not None else (request.prompt or "")
    return text + request.prefix


def encode(tokenizer: Any, request: Any) -> list[int]:
    """Token ids of ``render(request)``. A chat template already holds its special tokens; a raw
    prompt gets the tokenizer's usual ones (e.g. BOS)."""
    return tokenizer(render(tokenizer, request), add_special_tokens=request.messages is None)["input_ids"]
