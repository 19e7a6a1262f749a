"""Settings of the RL stage (recipe section ``rl``): prompt selection, GRPO, guards, vLLM.

Design choices:

* One frozen dataclass, every field declared with ``setting(default, help)``; the resolved values are
  saved beside the RL model. Field names follow TRL's ``GRPOConfig`` where a field is passed through
  unchanged (``num_generations``, ``beta``, ``epsilon``, ``loss_type``, ``max_completion_length``...),
  so a reader of TRL's documentation finds them.
* Defaults are the CPU demo's: a ~3M-parameter model, 40-80 token solutions, a few minutes of budget.
  GPU recipes override lr (the paper's scale is ~1e-6), batch, steps and switch on vLLM.
* The budget is ``max_steps`` optimizer steps (DESIGN: steps, not seconds). One step = one generation
  round of ``batch_size`` completions (``batch_size / num_generations`` prompts) and one optimizer
  update (``steps_per_generation=1``, ``num_iterations=1``: strictly on-policy, so ``epsilon``
  clipping only matters when ``num_iterations > 1`` or with vLLM's sampling mismatch).
* Truncation (DESIGN §5: "truncated completions silently rewarded or punished") is an explicit
  choice, ``truncation``:
  - ``penalize`` (default): a completion that hit ``max_completion_length`` without EOS gets reward -1
    whatever it contains, and stays in the loss. This pushes directly against the paper's known
    failure (CoT length explosion). It only differs from the verifier's verdict for a truncated text
    that already holds a correct ``\\boxed{}`` before the cut.
  - ``mask``: TRL's ``mask_truncated_completions`` (DAPO's "overlong filtering"): truncated completions
    still get the verifier's reward (they count in the group mean/std) but contribute no gradient.
* Guards against length explosion and reward collapse are settings too (``max_mean_length``,
  ``max_truncated_share``, ``min_mean_reward``, ``guard_patience``); see ``rl_guards``.

What was tried for the demo defaults (2 shared cores, one thread). The SFT model did not exist yet, so
the stand-in was the demo BASE model (3.3M parameters, 1000 pretraining steps). pass@1 = 200
synthetic_test problems x 4 samples at T 0.7 (stderr 0.016-0.022). Prompts were selected from the
first 64 synthetic_train problems, which kept 33-34:

  ======================================================  =========  ==========================
  RL run                                                  pass@1     note
  ======================================================  =========  ==========================
  none (base)                                             0.148      greedy 0.175
  lr 5e-5, batch 16, T 1.0, 40 steps                      0.151      113 s
  lr 3e-4, batch 16, T 1.0, 60 steps                      0.064      worse
  lr 1e-4, batch 32, T 0.7, 60 steps                      0.165      218 s; train acc 0.19 -> ~0.45
  same, 203 prompts picked from 400 problems              0.151      train reward flat
  lr 3e-4, batch 32, T 0.7, 60 steps                      0.113      worse
  lr 1e-4, batch 32, T 0.7, num_iterations 2, 100 steps   0.164
  lr 1e-4, batch 32, num_generations 8, T 0.7, 60 steps   0.141
  ======================================================  =========  ==========================

The defaults are the 0.165 row. No run beat the base by more than about one standard error: on this
base model, a few minutes of GRPO mostly raised the reward on the 33 training prompts. This has to
be retuned on the real SFT model.
"""

from __future__ import annotations

from dataclasses import dataclass

from astro_pipeline.config import setting

TRUNCATION_MODES = ("penalize", "mask")
LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo")
SCALE_REWARDS = ("group", "batch", "none")
VLLM_MODES = ("colocate", "server")
PROMPT_PRIORITIES = ("informative", "random")


@dataclass(frozen=True)
class RLSettings:
    # ---- prompt selection (moderate difficulty for the SFT model, measured by sampling)
    select_samples: int = setting(8, "prompt selection: samples per training problem used to estimate its solve rate")
    select_temperature: float = setting(
        0.0, "prompt selection: sampling temperature; 0 = use the RL `temperature` (rates then match what GRPO sees)"
    )
    select_max_new_tokens: int = setting(
        0, "prompt selection: token budget per sample; 0 = use `max_completion_length`"
    )
    select_batch_size: int = setting(32, "prompt selection: problems per backend.generate call")
    select_max_problems: int = setting(
        0, "prompt selection: measure at most this many training problems (seeded sample); 0 = all"
    )
    min_solve_rate: float = setting(0.125, "keep problems whose measured solve rate is >= this (lower = too hard)")
    max_solve_rate: float = setting(0.875, "keep problems whose measured solve rate is <= this (higher = too easy)")
    max_prompts: int = setting(512, "cap on the number of selected prompts (0 = no cap)")
    prompt_priority: str = setting(
        "informative",
        "which prompts survive the cap: informative = solve rate closest to 0.5 first (largest reward variance, "
        "so the most non-zero GRPO advantages), random = seeded random sample",
    )
    # ---- GRPO
    num_generations: int = setting(4, "GRPO group size: completions per prompt (paper: 4)")
    batch_size: int = setting(
        32, "completions per optimizer step (TRL per_device_train_batch_size); must be divisible by num_generations"
    )
    gradient_accumulation_steps: int = setting(1, "micro-batches per optimizer step (all generated in one round)")
    max_steps: int = setting(60, "optimizer steps (the training budget)")
    learning_rate: float = setting(1e-4, "peak learning rate (AdamW); tiny demo model ~1e-5..1e-4, 70B paper scale ~1e-6")
    lr_scheduler_type: str = setting("constant", "transformers scheduler name (constant, linear, cosine, constant_with_warmup...)")
    warmup_steps: int = setting(0, "linear warmup steps (with a *_with_warmup or decaying scheduler)")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    max_grad_norm: float = setting(1.0, "gradient-norm clip")
    beta: float = setting(0.0, "KL coefficient against the frozen SFT reference (0 = no reference model, no KL)")
    epsilon: float = setting(0.2, "PPO-style clipping of the importance ratio (lower side, and upper unless epsilon_high)")
    epsilon_high: float = setting(0.0, "upper clipping bound (DAPO clip-higher); 0 = same as epsilon")
    loss_type: str = setting(
        "dapo",
        "loss normalization (TRL loss_type): grpo (per-sequence mean; length-biased), dr_grpo (global constant), "
        "dapo (tokens in the global batch; default), bnpo, cispo, sapo, luspo, vespo",
    )
    scale_rewards: str = setting("group", "advantage scaling: group (std within the group), batch, none (Dr. GRPO)")
    num_iterations: int = setting(1, "optimizer passes over each generated batch (>1 makes epsilon clipping active)")
    max_completion_length: int = setting(128, "token budget of one completion; longer ones are truncated")
    truncation: str = setting(
        "penalize",
        "truncated completions (no EOS within max_completion_length): penalize = reward -1 and keep in the loss; "
        "mask = verifier's reward but excluded from the loss (TRL mask_truncated_completions)",
    )
    temperature: float = setting(0.7, "sampling temperature of the GRPO rollouts (the demo evaluates at 0.7)")
    top_p: float = setting(1.0, "top-p of the GRPO rollouts")
    seed: int = setting(0, "seed of model init randomness, prompt order and sampling")
    save_steps: int = setting(10, "checkpoint every this many steps (in work_dir; resume continues from the last)")
    save_total_limit: int = setting(2, "checkpoints kept in work_dir")
    logging_steps: int = setting(1, "log metrics every this many steps (guards need 1 to see every step)")
    threads: int = setting(0, "torch CPU threads; 0 = the cores not busy now (1 minimum)")
    # ---- hardware and generation engine (GPU recipes)
    use_cpu: bool = setting(True, "train on CPU (TRL use_cpu); false = the accelerator transformers finds")
    bf16: bool = setting(False, "bfloat16 training (set true on GPUs that support it)")
    gradient_checkpointing: bool = setting(False, "activation checkpointing (costs ~1.4x on the tiny model; for big ones)")
    use_vllm: bool = setting(
        False, "generate rollouts with vLLM instead of transformers' generate (GPU; on CPU colocate with vLLM's "
        "CPU build, from .venv-vllm)"
    )
    vllm_mode: str = setting(
        "colocate",
        "colocate = vLLM inside the training process, sharing its GPU(s); server = a separate `trl vllm-serve` "
        "process at vllm_server_base_url",
    )
    vllm_gpu_memory_utilization: float = setting(
        0.3, "colocate: GPU memory fraction vLLM may take (leave room for training; DESIGN §5: colocated OOM)"
    )
    vllm_cpu_kv_cache_gib: int = setting(
        1, "colocate on CPU: vLLM's KV cache in GiB (VLLM_CPU_KVCACHE_SPACE); there vllm_gpu_memory_utilization "
        "would be a share of all RAM, and a small one leaves no room once the trainer's memory is counted"
    )
    vllm_tensor_parallel_size: int = setting(1, "colocate: vLLM tensor-parallel size")
    vllm_server_base_url: str = setting("", "server: base URL of `trl vllm-serve` (e.g. http://host:8000)")
    vllm_enable_sleep_mode: bool = setting(False, "colocate: offload vLLM weights/cache during the optimizer step")
    # ---- guards against the paper's known failure (length explosion) and reward collapse
    max_mean_length: float = setting(
        0.0, "guard: stop when the mean completion length (tokens) exceeds this; 0 = 0.9 * max_completion_length"
    )
    max_truncated_share: float = setting(0.5, "guard: stop when the share of truncated completions exceeds this")
    min_mean_reward: float = setting(-0.9, "guard: stop when the mean reward stays below this (reward is in [-1, 1])")
    guard_patience: int = setting(5, "guard: consecutive logged steps a bound must be violated before stopping")
    guards_enabled: bool = setting(True, "stop training when a guard trips (false = only report)")

    def __post_init__(self) -> None:
        if self.num_generations < 2:
            raise ValueError("rl.num_generations must be >= 2 (GRPO needs a group to compute advantages)")
        if self.batch_size < 1 or self.batch_size % self.num_generations:
            raise ValueError(
                f"rl.batch_size ({self.batch_size}) must be a positive multiple of num_generations ({self.num_generations})"
            )
        if not 0.0 <= self.min_solve_rate <= self.max_solve_rate <= 1.0:
            raise ValueError("rl: need 0 <= min_solve_rate <= max_solve_rate <= 1")
        if self.select_samples < 1 or self.select_batch_size < 1:
            raise ValueError("rl.select_samples and rl.select_batch_size must be >= 1")
        if self.truncation not in TRUNCATION_MODES:
            raise ValueError(f"rl.truncation must be one of {TRUNCATION_MODES}, got {self.truncation!r}")
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(f"rl.loss_type must be one of {LOSS_TYPES}, got {self.loss_type!r}")
        if self.scale_rewards not in SCALE_REWARDS:
            raise ValueError(f"rl.scale_rewards must be one of {SCALE_REWARDS}, got {self.scale_rewards!r}")
        if self.vllm_mode not in VLLM_MODES:
            raise ValueError(f"rl.vllm_mode must be one of {VLLM_MODES}, got {self.vllm_mode!r}")
        if self.vllm_cpu_kv_cache_gib < 1:
            raise ValueError("rl.vllm_cpu_kv_cache_gib must be >= 1 (vLLM reads whole GiB)")
        if self.use_vllm and self.vllm_mode == "server" and not self.vllm_server_base_url:
            raise ValueError("rl.vllm_mode=server needs rl.vllm_server_base_url")
        if self.prompt_priority not in PROMPT_PRIORITIES:
            raise ValueError(f"rl.prompt_priority must be one of {PROMPT_PRIORITIES}, got {self.prompt_priority!r}")
        if self.max_steps < 1 or self.save_steps < 1 or self.logging_steps < 1:
            raise ValueError("rl.max_steps, rl.save_steps and rl.logging_steps must be >= 1")
        if self.max_completion_length < 1:
            raise ValueError("rl.max_completion_length must be >= 1")
        if self.guard_patience < 1:
            raise ValueError("rl.guard_patience must be >= 1")
        if not 0.0 <= self.max_truncated_share <= 1.0:
            raise ValueError("rl.max_truncated_share must be in [0, 1]")
        if self.beta < 0 or self.epsilon < 0 or self.epsilon_high < 0:
            raise ValueError("rl.beta, rl.epsilon and rl.epsilon_high must be >= 0")

    @property
    def length_bound(self) -> float:
        """The mean-length guard's bound in tokens (``max_mean_length`` or 0.9 of the budget)."""
        return self.max_mean_length if self.max_mean_length > 0 else 0.9 * self.max_completion_length

    @property
    def selection_temperature(self) -> float:
        return self.select_temperature if self.select_temperature > 0 else self.temperature

    @property
    def selection_max_new_tokens(self) -> int:
        return self.select_max_new_tokens if self.select_max_new_tokens > 0 else self.max_completion_length
