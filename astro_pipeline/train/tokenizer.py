"""The demo tokenizer: near word-level, every digit its own token, never an unknown token.

Design choices:

* Pre-tokenization splits text into single digits, single whitespace characters (so "\\n\\n" is
  always two "\\n" tokens and a prompt ending in "\\n\\n" tokenizes exactly like the same text in the
  middle of a training example: MCTS continues partial solutions that end in the step delimiter),
  words with their leading space (" Multiply") and punctuation runs. A space before a digit is its
  own token, so numbers look the same whatever precedes them.
* The model is BPE over a byte-level alphabet, trained on the demo corpus: every word of that
  corpus becomes one token (word-level in effect), and any other text (the reflection phrases of
  the CoT stage, user input) still encodes, byte by byte, instead of becoming ``<unk>``.
  ``EXTRA_WORDS`` adds words the later stages are likely to write, so that they are single tokens.
* Special tokens: ``<|pad|>``, ``<|eos|>`` and one per chat role. The chat template is
  ``<|user|>\\n{content}\\n<|assistant|>\\n{content}<|eos|>\\n``; the assistant content sits in
  ``{% generation %}`` markers so TRL's ``assistant_only_loss`` works with it.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, EOS = "<|pad|>", "<|eos|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, EOS, *ROLE_TOKENS)

# digits one by one; each whitespace character alone; words with one leading space; punctuation runs
_PIECE = Regex(r"[0-9]| ?[A-Za-z]+| ?[^\sA-Za-z0-9]+|\s")

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ message['content'] + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

# Words the later stages (verbalized search, reflections) are likely to use; one line of text is
# enough to make each a single token. Unlisted words still encode byte by byte.
EXTRA_WORDS = (
    "Wait, is this solution right so far? Let me check. Hmm, I am not sure. That seems wrong, and "
    "this does not look right. Let's go back to where we computed the step and try again. Let's "
    "restart our solution from the beginning. This seems right, so the solution is correct. "
    "First, next, then, finally, so, but, because, maybe, actually, therefore, we, I, it, an, of, to, "
    "result, value, number, answer, step, problem, verify, mistake, error, again, instead, other."
)


def _backend(vocab_size: int) -> tuple[Tokenizer, trainers.BpeTrainer]:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(_PIECE, behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    return tok, trainer


def train_demo_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Train the demo tokenizer on ``texts`` (plus ``EXTRA_WORDS``) and wrap it for transformers."""
    tok, trainer = _backend(vocab_size)
    tok.train_from_iterator(_with_extra(texts), trainer=trainer)
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        padding_side="left",  # generation pads on the left; training code pads explicitly
        model_max_length=1 << 30,
    )
    return hf


def _with_extra(texts: Iterable[str]) -> Iterable[str]:
    yield from texts
    yield EXTRA_WORDS
