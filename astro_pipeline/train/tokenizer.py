"""The demo tokenizer: near word-level, every digit its own token, never an unknown token.

Design choices:

* Pre-tokenization splits text into single digits, single whitespace characters (so "\\n\\n" is
  always two "\\n" tokens and a prompt ending in "\\n\\n" tokenizes exactly like the same text in the
  middle of a training example: MCTS continues partial solutions that end in the step delimiter),
  words with their leading space (" Multiply") and punctuation runs. A space before a digit is its
  own token, so numbers look the same whatever precedes them. Tried (guess_check, 1500 steps, fp32):
  every number one token made the base model worse at copying the problem's result into its check
  line (66% against 99% with digits) and no better at saying whether two numbers are equal.
* The model is BPE over a byte-level alphabet, trained on the demo corpus: with a vocabulary
  large enough for every merge (BPE stops early when nothing is left to merge), every word of that
  corpus becomes one token (word-level in effect), and any other text (user input) still encodes,
  byte by byte, instead of becoming ``<unk>``. The caller puts the phrase bank's text into the
  corpus (``demo_corpus.tokenizer_texts``): a reflection spelled in pieces ("B", "ut", " w", "a",
  "it") is what a 512-entry tokenizer without the bank did, and the SFT model then wrote word salad.
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


def train_demo_tokenizer(texts: Iterable[str], vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train the demo tokenizer on ``texts`` and wrap it for transformers (``vocab_size`` is a ceiling)."""
    tok, trainer = _backend(vocab_size)
    tok.train_from_iterator(texts, trainer=trainer)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """A ``tokenizers`` tokenizer as the project's transformers tokenizer: pad/eos/role tokens and the
    chat template (the demo tokenizer and the tests' character-level one share it)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(ROLE_TOKENS),
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        padding_side="left",  # generation pads on the left; training code pads explicitly
        model_max_length=1 << 30,
    )

