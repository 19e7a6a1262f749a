"""Settings of the base-model stage (recipe section "base_model").

Design: one dataclass covers both kinds. ``kind: demo`` trains a tokenizer and a tiny Llama from
scratch on the synthetic train problems (the fields below ``model`` size and train it);
``kind: pretrained`` resolves ``model`` (a local folder, an ``s3://`` folder or a hub id) and only
checks that its config and tokenizer load. The evaluation fields fix how pass@1 is measured, so a
reported number always comes with its sampling settings. The training budget is stated in
optimizer steps, not seconds (DESIGN: steps were the biggest lever, and wall time depends on who
else uses the cores). Because the tiny model goes from mostly wrong to mostly right within a few
hundred steps, at a step that varies with the seed and the machine, training can also stop early
once a quick pass@1 check on held-out train problems reaches ``target_pass_at_1`` (the chain world
used it to stay in the 30-70% band). The guess_check demo trains all its steps (target 0): its
first guesses stay near chance (12% right of 9 values) by the nature of the world, and what it
needs, an honest check line, appears late and suddenly (between 1500 and 3000 steps; see
``train.demo_corpus``).
"""

from __future__ import annotations

from dataclasses import dataclass

from astro_pipeline.config import setting

KINDS = ("demo", "pretrained")


@dataclass(frozen=True)
class BaseModelSettings:
    kind: str = setting("demo", "demo: train a tiny Llama from scratch on synthetic_train; pretrained: use `model`")
    model: str = setting("", "model reference for kind=pretrained: local folder, s3:// folder or hub id")
    # demo tokenizer and architecture
    vocab_size: int = setting(
        1024, "demo tokenizer: largest vocabulary (BPE over bytes stops when every word is whole; the demo needs ~500)"
    )
    hidden_size: int = setting(128, "demo Llama: hidden size")
    num_layers: int = setting(4, "demo Llama: decoder layers")
    num_heads: int = setting(4, "demo Llama: attention heads (also key/value heads)")
    intermediate_size: int = setting(384, "demo Llama: MLP inner size")
    max_position_embeddings: int = setting(512, "demo Llama: longest sequence (prompt + completion)")
    # demo optimisation
    steps: int = setting(
        1500, "demo: most optimizer steps (the training budget; fewer when target_pass_at_1 is met first; the demo "
        "recipe's guess_check world needs 3000 for an honest check line)",
    )
    batch_size: int = setting(4, "demo: rows per optimizer step (a row packs several documents, see pack_length)")
    pack_length: int = setting(
        384, "demo: pack whole documents into rows of at most this many tokens, so every position up to it is trained "
        "(reflective traces are 3-4x longer than a solved problem); 0 = one document per row"
    )
    lr: float = setting(3e-3, "demo: peak learning rate (AdamW)")
    warmup_steps: int = setting(50, "demo: linear warmup steps before the cosine decay")
    min_lr_ratio: float = setting(0.1, "demo: final learning rate as a fraction of the peak")
    weight_decay: float = setting(0.1, "demo: AdamW weight decay (not on norms and biases)")
    beta1: float = setting(0.9, "demo: AdamW beta1")
    beta2: float = setting(0.95, "demo: AdamW beta2")
    grad_clip: float = setting(1.0, "demo: gradient-norm clip (0 disables)")
    precision: str = setting(
        "auto",
        "demo: auto = bfloat16 autocast only where the CPU has native bf16 (AVX512-BF16 or AMX), else fp32; or "
        "fp32 / bf16 (on an AVX2-only CPU bf16 autocast was 9.4x slower per step; on one with AVX512-BF16 it was "
        "1.3-1.8x faster but the demo model learned to copy the problem's result later, so the demo recipe sets fp32)",
    )
    loss_on_prompt: bool = setting(
        True, "demo: the loss covers the whole text, prompt included (a language model of problems too), not the solution only"
    )
    forward_docs_share: float = setting(
        0.5,
        "demo (guess_check world): chain-world problems over the same ranges per problem document, so the base "
        "model computes an attempt's arithmetic from its guess instead of steering it to the stated result",
    )
    check_docs_share: float = setting(
        0.5,
        "demo (guess_check world): verification documents ('Check x = 4.' solved with a check line that says "
        "whether the value matches the result) per problem document, so a failed attempt shows its failure",
    )
    miss_docs_share: float = setting(
        0.0,
        "demo (guess_check world): failed attempts in the problem's own prompt (one wrong guess whose check line "
        "says it missed, then the end) per problem document, so the honest check line is learned under the prompt "
        "that search and evaluation use, not only under 'Check x = N.'",
    )
    phrase_docs_share: float = setting(
        0.1,
        "demo: plain documents ('Say something.' -> three phrase-bank sentences) per problem document, so the base "
        "model speaks its reflections' words before SFT without having seen search (0 = none)",
    )
    seed: int = setting(0, "demo: seed of initialisation and batch order")
    threads: int = setting(0, "demo: torch CPU threads; 0 = the cores not busy now (1 minimum)")
    log_every: int = setting(10, "demo: report mean loss and lr every this many steps")
    target_pass_at_1: float = setting(
        0.4,
        "demo: stop training once pass@1 on held-out train problems (at eval_temperature) reaches this, so the "
        "base model stays imperfect; 0 = always train all `steps`",
    )
    target_check_every: int = setting(50, "demo: optimizer steps between two checks of the target")
    target_check_from: int = setting(400, "demo: first optimizer step at which the target is checked")
    dev_problems: int = setting(100, "demo: synthetic_train problems held out of training for the target check")
    dev_samples: int = setting(4, "demo: samples per held-out problem in the target check")
    # pass@1 measurement
    eval_temperature: float = setting(0.7, "sampling temperature at which pass@1 is measured (0 = greedy)")
    eval_top_p: float = setting(1.0, "top-p for the pass@1 measurement")
    eval_samples: int = setting(8, "samples per test problem for pass@1")
    eval_problems: int = setting(0, "test problems used for pass@1; 0 = all of synthetic_test")
    eval_max_new_tokens: int = setting(160, "token budget of one sampled solution")
    eval_seed: int = setting(1234, "seed of the pass@1 sampling")

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"base_model.kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "pretrained" and not self.model:
            raise ValueError("base_model.kind=pretrained needs base_model.model")
        if not 0.0 <= self.target_pass_at_1 <= 1.0:
            raise ValueError("base_model.target_pass_at_1 must be in [0, 1]")
        if self.pack_length < 0 or self.batch_size < 1:
            raise ValueError("base_model: pack_length must be >= 0 and batch_size >= 1")
        if self.target_check_every < 1 or self.dev_samples < 1 or self.dev_problems < 0:
            raise ValueError("base_model: target_check_every and dev_samples must be >= 1, dev_problems >= 0")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise ValueError(f"base_model.precision must be auto, fp32 or bf16, got {self.precision!r}")
        shares_ok = all(0.0 <= share <= 2.0 for share in (self.forward_docs_share, self.check_docs_share, self.miss_docs_share))
        if not 0.0 <= self.phrase_docs_share <= 1.0 or not shares_ok:
            raise ValueError("base_model.phrase_docs_share must be in [0, 1], forward/check/miss_docs_share in [0, 2]")
        if self.hidden_size % self.num_heads:
            raise ValueError("base_model.hidden_size must be divisible by num_heads")
