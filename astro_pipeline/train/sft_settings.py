"""Settings of the SFT stage (recipe section "sft").

Design choices:

* Defaults are the paper's (DESIGN §2 "SFT"): full fine-tune, 1 epoch, AdamW, lr 3e-6, cosine
  schedule, max length 8192, loss on all tokens (prompt included). The demo recipe overrides the
  learning rate (a 3M-parameter model trained from scratch needs ~1e-3) and the lengths.
* ``batch_size`` is per device (per process), as in TRL/transformers: the global batch is
  ``batch_size * gradient_accumulation_steps * processes``. ``sft_main`` launched by torchrun with
  N processes therefore needs ``batch_size`` divided by N to keep the same global batch.
* ``max_steps`` is a cap, not an override: the run stops at ``min(max_steps, epochs' steps)`` and the
  learning-rate schedule is laid out over that many steps (so a capped run still decays fully).
* ``kinds`` picks the corpus rows: ("direct", "search") is ASTRO-SFT, ("direct_arm",) the
  Direct-SFT ablation.
* Precision is "auto" (bf16 mixed precision on a CUDA GPU that supports it, fp32 elsewhere) and
  gradient checkpointing is off unless asked: TRL turns both on by default, and on CPU bf16 autocast
  and checkpointing only cost time for small models (DESIGN: checkpointing cost ~1.4x).
"""

from __future__ import annotations

from dataclasses import dataclass

from astro_pipeline.config import setting

METHODS = ("full", "lora")
KINDS = ("direct", "search", "direct_arm")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MODEL_DTYPES = ("float32", "bfloat16")
SCHEDULES = ("cosine", "linear", "constant", "constant_with_warmup", "cosine_with_min_lr")
SAMPLINGS = ("random", "group_by_length")


@dataclass(frozen=True)
class SFTSettings:
    method: str = setting("full", "full: fine-tune every weight; lora: train LoRA adapters, then merge them into the saved model")
    kinds: tuple[str, ...] = setting(
        ("direct", "search"),
        "cot_examples kinds to train on: (direct, search) = ASTRO-SFT; (direct_arm,) = the Direct-SFT ablation",
    )
    # schedule and optimizer
    epochs: float = setting(1.0, "passes over the selected corpus (paper: 1)")
    max_steps: int = setting(0, "optional cap on optimizer steps (0 = none); the lr schedule spans the capped run")
    learning_rate: float = setting(3e-6, "peak learning rate of AdamW (paper: 3e-6 for 70B; the tiny demo model needs ~1e-3)")
    lr_scheduler: str = setting("cosine", "learning-rate schedule after warmup: cosine, linear, constant, ...")
    min_lr_ratio: float = setting(0.0, "with lr_scheduler=cosine_with_min_lr: final lr as a fraction of the peak")
    warmup_ratio: float = setting(0.03, "fraction of the optimizer steps spent in linear warmup")
    weight_decay: float = setting(0.0, "AdamW weight decay")
    adam_beta1: float = setting(0.9, "AdamW beta1")
    adam_beta2: float = setting(0.999, "AdamW beta2")
    max_grad_norm: float = setting(1.0, "gradient-norm clip (0 disables)")
    batch_size: int = setting(8, "sequences per device (process) per micro-batch; global batch = this * accumulation * processes")
    gradient_accumulation_steps: int = setting(1, "micro-batches accumulated per optimizer step")
    seed: int = setting(0, "seed of LoRA initialisation and of the data order (identical across runs, so resume is exact)")
    # data
    max_length: int = setting(8192, "longest training sequence in tokens (prompt + completion); longer ones are cut at the end")
    completion_only_loss: bool = setting(
        False, "true: loss on the chain of thought only; false: loss on all tokens, prompt included (paper)"
    )
    packing: bool = setting(False, "pack several examples into max_length-long rows (best-fit, no cross-attention between them)")
    padding_free: bool = setting(
        False, "concatenate each batch into one row without padding (attention stays per example; the same max_length cut applies)"
    )
    sampling: str = setting(
        "random",
        "batch order: random (seeded shuffle) or group_by_length (seeded shuffle, then batches of similar "
        "length: less padding; the same order every epoch); both resume exactly",
    )
    dataloader_workers: int = setting(0, "DataLoader worker processes (0 = collate in the training process)")
    # LoRA
    lora_r: int = setting(16, "LoRA rank")
    lora_alpha: int = setting(32, "LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = setting(0.05, "dropout on the LoRA branch")
    lora_target_modules: tuple[str, ...] = setting(
        ("all-linear",), "modules that get adapters: (all-linear,) = every linear layer but the LM head, or names like q_proj"
    )
    # hardware and bookkeeping
    precision: str = setting("auto", "auto: bf16 mixed precision on a CUDA GPU that has it, else fp32; or fp32 / bf16 / fp16")
    model_dtype: str = setting(
        "float32",
        "dtype the weights are loaded (and trained, and merged) in: float32 (mixed precision keeps fp32 master "
        "weights) or bfloat16 (half the memory; for 70B-class models under FSDP/ZeRO-3)",
    )
    gradient_checkpointing: bool = setting(False, "recompute activations in the backward pass (saves memory, costs time)")
    threads: int = setting(0, "torch CPU threads per process; 0 = free cores divided by the local processes (1 minimum)")
    save_steps: int = setting(100, "write a resumable checkpoint to the work dir every this many optimizer steps")
    save_total_limit: int = setting(2, "checkpoints kept in the work dir (older ones are deleted)")
    logging_steps: int = setting(10, "report loss, lr, grad norm and tokens/s every this many optimizer steps")
    report_to: tuple[str, ...] = setting(
        ("tensorboard",), "metric trackers besides on_log: tensorboard (files in <work_dir>/tensorboard), wandb, mlflow, ..."
    )
    progress_bar: bool = setting(
        False, "show the trainer's tqdm progress bar and its datasets' bars (the run log has its own progress lines: "
        "with the bars one demo run printed 1,344 terminal lines)",
    )

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"sft.method must be one of {METHODS}, got {self.method!r}")
        bad = sorted(set(self.kinds) - set(KINDS))
        if bad or not self.kinds:
            raise ValueError(f"sft.kinds: unknown {bad}; choose from {KINDS}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"sft.precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.model_dtype not in MODEL_DTYPES:
            raise ValueError(f"sft.model_dtype must be one of {MODEL_DTYPES}, got {self.model_dtype!r}")
        if self.lr_scheduler not in SCHEDULES:
            raise ValueError(f"sft.lr_scheduler must be one of {SCHEDULES}, got {self.lr_scheduler!r}")
        if self.sampling not in SAMPLINGS:
            raise ValueError(f"sft.sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        for name in ("batch_size", "gradient_accumulation_steps", "max_length", "save_steps", "logging_steps", "lora_r"):
            if getattr(self, name) < 1:
                raise ValueError(f"sft.{name} must be >= 1")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("sft: need epochs > 0 or max_steps > 0")
        if self.max_steps < 0:
            raise ValueError("sft.max_steps must be >= 0 (0 = no cap)")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("sft.warmup_ratio must be in [0, 1)")
        if self.packing and self.padding_free:
            raise ValueError("sft: packing already trains padding-free; set only one of packing / padding_free")
