"""The RL stage: prompt selection by measured solve rate, then GRPO from the SFT model with TRL.

Public API:

* ``measure_solve_rates(backend, problems, settings, verifier) -> pl.DataFrame``: every problem with
  its measured solve rate and a ``selection`` label (selected / too_easy / too_hard / over_cap).
* ``select_prompts(backend, problems, settings, verifier) -> pl.DataFrame``: only the selected rows.
* ``selection_counts(measured) -> dict``: how many problems were too easy, too hard, capped, kept.
* ``train_rl(sft_model_dir, prompts, settings, out_dir, *, work_dir, on_log=None, resume=True,
  reflection_counter=None, verifier=None) -> RunSummary``: GRPO, then a Hugging Face folder in ``out_dir``.
* ``check_guards`` (re-exported from ``rl_guards``).

Design choices:

* Prompt selection samples ``select_samples`` completions per problem through the project's
  ``Backend`` protocol (chat messages, so the backend applies the model's chat template exactly as
  GRPO will), verifies each against the gold (gold first) and keeps problems whose solve rate lies in
  [``min_solve_rate``, ``max_solve_rate``]: GRPO learns nothing from a group whose rewards are all
  equal. A sample that hit the token budget (finish_reason "length") counts as unsolved whatever it
  contains. Each request carries seed ``derive_seed(settings.seed, "select_prompts", row index)``
  (``seeds``), so a problem's rate does not depend on how requests were batched. Over the cap, ``prompt_priority`` decides who stays.
* Training is TRL's ``GRPOTrainer`` (it expresses every knob of the recipe: group size, beta, epsilon,
  loss_type, truncation masking, vLLM). One optimizer step = one generation round
  (``steps_per_generation = gradient_accumulation_steps``). CPU runs set ``use_cpu=True``,
  ``bf16=False``, ``gradient_checkpointing=False`` explicitly (TRL defaults them on; DESIGN).
  GPU recipes: ``use_cpu: false``, ``bf16: true``, ``use_vllm: true`` with ``vllm_mode`` colocate
  (vLLM shares the training GPU; bound its memory with ``vllm_gpu_memory_utilization``) or server
  (``trl vllm-serve --model SFT_DIR`` on other GPUs, ``vllm_server_base_url`` pointing at it);
  multi-GPU training by launching the caller under ``accelerate launch`` / ``torchrun`` (TRL and
  accelerate read the launcher's environment; nothing here changes). The GPU paths cannot run on
  the CPU machines and are untested here; colocate does run on vLLM's CPU build (.venv-vllm, tested
  there): its KV cache is then set through ``VLLM_CPU_KVCACHE_SPACE`` (``vllm_cpu_kv_cache_gib``),
  because TRL passes vLLM only ``vllm_gpu_memory_utilization``, which the CPU build reads as a share
  of all RAM.
* Reward: ``rewards.CorrectnessReward`` (+1 correct, -1 otherwise, explicit truncation handling; an
  unparsable gold raises). All golds are checked before the first step (``rewards.check_golds``).
* Metrics: every logged step's numeric TRL metrics (``reward``, ``reward_std``,
  ``completions/mean_length``, ``completions/clipped_ratio``, ``kl`` when beta > 0, ``loss``,
  ``entropy``, ``learning_rate``...) plus the reward function's (``accuracy``, ``truncated_share``,
  ``no_answer_share``, ``timeout_share``, ``reflections_per_completion``,
  ``backtracks_per_completion``) go to ``on_log(step, metrics)``, to TensorBoard
  (``work_dir/tensorboard``) and into the summary's ``metrics_history``. After a resume, steps between
  the last checkpoint and the kill are trained and logged again under the same step numbers (the
  caller should upsert by step).
* Resume: checkpoints go to ``work_dir/checkpoints`` every ``save_steps``; a rerun with
  ``resume=True`` continues from the newest COMPLETE checkpoint (one whose ``trainer_state.json``, the
  last file the trainer writes, exists); half-written ones left by a kill are deleted. A run record
  (``work_dir/rl_run.json``) holds a fingerprint of the settings, the prompts and the SFT model; a
  rerun whose fingerprint differs refuses to resume (it would silently mix two runs) unless
  ``resume=False``, which starts over. A rerun whose newest checkpoint is the last step trains
  nothing more. (Whether a finished model can be reused is the asset's decision, by its own
  fingerprint; see ``train.runs``.)
* Guards (``rl_guards``): length explosion and reward collapse stop training through a callback; the
  summary says whether and why. The model saved is the one at the stop (the caller's asset check
  decides what to do with an unhealthy run; the reasons are in the summary).
* Output: ``out_dir`` is written atomically (built in a sibling temp folder, then renamed): config,
  safetensors, generation config, tokenizer with its chat template, and ``astro_rl_model.json``
  (summary with resolved settings and library versions).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import polars as pl

from astro_pipeline.config import to_dict
from astro_pipeline.provenance import library_versions
from astro_pipeline.llm.protocol import GenerationRequest, SamplingParams
from astro_pipeline.train.rewards import (
    CORRECT,
    CorrectnessReward,
    ReflectionCounter,
    check_golds,
    verify_pairs,
)
from astro_pipeline.llm.device import set_threads
from astro_pipeline.llm.prompt import chat_messages
from astro_pipeline.seeds import derive_seed
from astro_pipeline.train.rl_guards import GuardCallback, check_guards
from astro_pipeline.train.rl_settings import RLSettings
from astro_pipeline.runlog import OnLog
from astro_pipeline.train.runs import (
    CHECKPOINTS,
    TENSORBOARD,
    AlreadyComplete,
    CompleteGuard,
    RunSummary,
    drop_incomplete_checkpoints,
    last_complete_checkpoint,
    model_folder_hash,
    prepare_run,
    publish_folder,
)
from astro_pipeline.verify.rules import Verifier
from astro_pipeline.warehouse.tables import require_columns

__all__ = [
    "SUMMARY_FILE",
    "check_guards",
    "drop_incomplete_checkpoints",
    "last_complete_checkpoint",
    "measure_solve_rates",
    "select_prompts",
    "selection_counts",
    "train_rl",
]

log = logging.getLogger(__name__)

SUMMARY_FILE = "astro_rl_model.json"
RUN_FILE = "rl_run.json"


# ---------------------------------------------------------------------------------------------
# prompt selection


def measure_solve_rates(backend: Any, problems: pl.DataFrame, settings: RLSettings, verifier: Verifier,
                        system_prompt: str = "") -> pl.DataFrame:
    """Every (sampled) problem with ``n_samples``, ``n_correct``, ``n_truncated``, ``solve_rate`` and ``selection``.

    ``backend``: anything with the ``Backend`` protocol's ``generate``. ``problems``: at least
    ``problem`` and ``answer`` columns (more are kept). ``verifier``: ``verify_many(pairs)`` object or
    ``fn(gold, response)``; an unparsable gold raises ``UnparsableGoldError``. ``system_prompt``: as
    in ``llm.prompt.chat_messages`` (the one GRPO and evaluation use).
    """
    require_columns(problems, ("problem", "answer"), "select_prompts: problems")
    df = problems
    if settings.select_max_problems and df.height > settings.select_max_problems:
        df = df.sample(n=settings.select_max_problems, seed=settings.seed, shuffle=False)
    check_golds(verifier, df["answer"].to_list(), where="select_prompts")
    texts, golds = df["problem"].to_list(), [str(a) for a in df["answer"].to_list()]
    n = settings.select_samples
    params = dict(
        n=n, temperature=settings.selection_temperature, top_p=settings.top_p,
        max_new_tokens=settings.selection_max_new_tokens,
    )
    n_correct: list[int] = []
    n_truncated: list[int] = []
    for start in range(0, len(texts), settings.select_batch_size):
        idx = range(start, min(start + settings.select_batch_size, len(texts)))
        requests = [
            GenerationRequest(
                messages=chat_messages(texts[i], system_prompt),
                params=SamplingParams(**params, seed=derive_seed(settings.seed, "select_prompts", i)),
            )
            for i in idx
        ]
        outputs = backend.generate(requests)
        if len(outputs) != len(requests) or any(len(o) != n for o in outputs):
            raise ValueError(f"backend returned {[len(o) for o in outputs]} samples for {len(requests)} x {n}")
        pairs = [(golds[i], s.text) for i, samples in zip(idx, outputs) for s in samples]
        verdicts = [str(getattr(r.verdict, "value", r.verdict)) for r in verify_pairs(verifier, pairs)]
        for k, samples in enumerate(outputs):
            cut = [s.finish_reason == "length" for s in samples]
            ok = [v == CORRECT and not c for v, c in zip(verdicts[k * n : (k + 1) * n], cut)]
            n_correct.append(sum(ok))
            n_truncated.append(sum(cut))
        log.info("select_prompts: measured %d/%d problems", len(n_correct), len(texts))

    rates = [c / n for c in n_correct]
    labels = []
    for r in rates:
        if r < settings.min_solve_rate:
            labels.append("too_hard")
        elif r > settings.max_solve_rate:
            labels.append("too_easy")
        else:
            labels.append("selected")
    candidates = [i for i, lab in enumerate(labels) if lab == "selected"]
    if settings.max_prompts and len(candidates) > settings.max_prompts:
        rng = random.Random(settings.seed)
        tie = {i: rng.random() for i in candidates}
        if settings.prompt_priority == "informative":
            order = sorted(candidates, key=lambda i: (abs(rates[i] - 0.5), tie[i]))
        else:
            order = sorted(candidates, key=lambda i: tie[i])
        for i in order[settings.max_prompts :]:
            labels[i] = "over_cap"
    return df.with_columns(
        pl.Series("n_samples", [n] * df.height, dtype=pl.Int64),
        pl.Series("n_correct", n_correct, dtype=pl.Int64),
        pl.Series("n_truncated", n_truncated, dtype=pl.Int64),
        pl.Series("solve_rate", rates, dtype=pl.Float64),
        pl.Series("selection", labels, dtype=pl.Utf8),
    )


def selection_counts(measured: pl.DataFrame) -> dict[str, Any]:
    """Counts per selection label and the mean solve rate of the selected problems."""
    counts = {label: 0 for label in ("selected", "too_easy", "too_hard", "over_cap")}
    for label, count in measured.group_by("selection").len().iter_rows():
        counts[label] = int(count)
    selected = measured.filter(pl.col("selection") == "selected")
    return {
        "measured": measured.height,
        **counts,
        "mean_solve_rate_all": float(measured["solve_rate"].mean()) if measured.height else None,
        "mean_solve_rate_selected": float(selected["solve_rate"].mean()) if selected.height else None,
    }


def select_prompts(backend: Any, problems: pl.DataFrame, settings: RLSettings, verifier: Verifier,
                   system_prompt: str = "") -> pl.DataFrame:
    """The problems of moderate difficulty for the model behind ``backend`` (see ``measure_solve_rates``).

    Returns the selected rows with their measured ``solve_rate`` (and ``n_samples``, ``n_correct``,
    ``n_truncated``); the counts of too easy / too hard / capped problems are logged (call
    ``measure_solve_rates`` + ``selection_counts`` to keep them).
    """
    measured = measure_solve_rates(backend, problems, settings, verifier, system_prompt)
    counts = selection_counts(measured)
    log.info("select_prompts: %s", counts)
    return measured.filter(pl.col("selection") == "selected").drop("selection")


# ---------------------------------------------------------------------------------------------
# training


def run_fingerprint(sft_model_dir: str | Path, prompts: pl.DataFrame, settings: RLSettings,
                    system_prompt: str = "") -> str:
    """What determines a run: the settings, the prompt rows (problem, answer), the system prompt (when
    set) and the SFT model folder."""
    h = hashlib.sha256()
    h.update(json.dumps(to_dict(settings), sort_keys=True).encode())
    if system_prompt:
        h.update(f"system\x00{system_prompt}\x01".encode())
    for problem, answer in prompts.select("problem", "answer").iter_rows():
        h.update(f"{problem}\x00{answer}\x01".encode())
    h.update(model_folder_hash(Path(sft_model_dir)).encode())
    return h.hexdigest()[:16]


def _colocated_vllm_on_cpu(settings: RLSettings) -> None:
    """Prepare TRL's colocated engine on vLLM's CPU build (in this process).

    * KV cache: vLLM's CPU platform reads its size from the environment when the engine starts
      (TRL has no option for it). An explicit value is kept.
    * Weights TRL can update: vllm-cpu 0.32 packs each linear layer's weight for oneDNN and drops
      the original, so TRL's weight sync after a step failed on an AMD EPYC with AVX512
      ("'Parameter' object has no attribute 'weight_loader'"; the same test had passed on the
      AVX2-only machine before it, for a reason not checked); packed weights would not see the
      update anyway. Turning oneDNN off (process-wide: it is only done for this colocated engine)
      puts vLLM on its plain torch linear, which reads the weights TRL writes.
    """
    if settings.use_vllm and settings.vllm_mode == "colocate" and settings.use_cpu:
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", str(settings.vllm_cpu_kv_cache_gib))
        import vllm._custom_ops as vllm_ops

        vllm_ops._supports_onednn = False


# RLSettings fields that GRPOConfig takes under the same name and meaning
_GRPO_SAME_NAME = (
    # hardware: explicit, TRL defaults bf16 and gradient checkpointing to on
    "use_cpu", "bf16",
    # budget and optimisation
    "max_steps", "gradient_accumulation_steps", "learning_rate", "lr_scheduler_type", "warmup_steps",
    "weight_decay", "max_grad_norm", "seed",
    # GRPO
    "num_generations", "max_completion_length", "temperature", "top_p", "beta", "epsilon", "loss_type",
    "scale_rewards", "num_iterations",
    # generation engine
    "use_vllm", "vllm_mode", "vllm_gpu_memory_utilization", "vllm_tensor_parallel_size", "vllm_enable_sleep_mode",
    # checkpoints and logs
    "save_steps", "save_total_limit", "logging_steps",
)


def _grpo_config(settings: RLSettings, ckpt_dir: Path):
    from trl import GRPOConfig

    from astro_pipeline.train.hf_args import checkpointing_kwargs

    return GRPOConfig(
        output_dir=str(ckpt_dir),
        **{name: getattr(settings, name) for name in _GRPO_SAME_NAME},
        fp16=False,
        **checkpointing_kwargs(settings.gradient_checkpointing),  # the installed transformers' name
        per_device_train_batch_size=settings.batch_size,
        epsilon_high=settings.epsilon_high or None,
        mask_truncated_completions=settings.truncation == "mask",
        vllm_server_base_url=settings.vllm_server_base_url or None,
        # checkpoints and logs (TensorBoard is attached as a callback with a fixed folder)
        save_strategy="steps",
        save_only_model=False,  # optimizer + RNG states are what make a resume exact
        logging_strategy="steps",
        report_to="none",
        log_completions=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        push_to_hub=False,
    )


def _prompt_dataset(prompts: pl.DataFrame, system_prompt: str = ""):
    from datasets import Dataset

    ids = prompts["problem_id"].to_list() if "problem_id" in prompts.columns else [str(i) for i in range(prompts.height)]
    return Dataset.from_dict(
        {
            "prompt": [list(chat_messages(p, system_prompt)) for p in prompts["problem"].to_list()],
            "answer": [str(a) for a in prompts["answer"].to_list()],
            "problem_id": [str(i) for i in ids],
        }
    )


def train_rl(
    sft_model_dir: str,
    prompts: pl.DataFrame,
    settings: RLSettings,
    out_dir: str,
    *,
    work_dir: str,
    on_log: OnLog | None = None,
    resume: bool = True,
    reflection_counter: ReflectionCounter | None = None,
    verifier: Verifier | None = None,
    system_prompt: str = "",
) -> RunSummary:
    """GRPO from ``sft_model_dir`` on ``prompts`` (columns problem, answer[, problem_id]); model to ``out_dir``.

    ``work_dir`` holds checkpoints, TensorBoard logs and the run record. ``on_log(step, metrics)`` is
    called once per logged step. ``reflection_counter(text) -> (n_reflections, n_backtracks)`` (e.g.
    ``functools.partial(count_reflections, cloning_settings=...)``) adds per-completion reflection and
    backtrack means. ``verifier``: a ``verify_many`` object (default: a ``BatchVerifier`` with default
    ``VerifySettings``, closed at the end). ``system_prompt``: the system turn of every prompt
    (``llm.prompt``; the one the model is evaluated with). Returns the run's summary; its ``record`` is also saved as
    ``astro_rl_model.json``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback
    from transformers.integrations import TensorBoardCallback
    from trl import GRPOTrainer

    started = time.perf_counter()
    require_columns(prompts, ("problem", "answer"), "train_rl: prompts")
    per_step_prompts = settings.batch_size * settings.gradient_accumulation_steps // settings.num_generations
    if prompts.height < per_step_prompts:
        raise ValueError(f"train_rl: {prompts.height} prompts < {per_step_prompts} distinct prompts per step")
    sft = Path(sft_model_dir)
    out, work = Path(out_dir), Path(work_dir)
    ckpt_dir = work / CHECKPOINTS
    fingerprint = run_fingerprint(sft, prompts, settings, system_prompt)
    if not resume:
        shutil.rmtree(work / TENSORBOARD, ignore_errors=True)
    run = prepare_run(work, {"fingerprint": fingerprint, "settings": to_dict(settings)}, run_file=RUN_FILE,
                      resume=resume, other_run="refuse", who="train_rl")
    dropped, checkpoint = run.dropped_incomplete, run.resume_from

    threads = set_threads(settings.threads) if settings.use_cpu else torch.get_num_threads()
    own_verifier = verifier is None
    if own_verifier:
        from astro_pipeline.verify import BatchVerifier

        verifier = BatchVerifier()
    try:
        check_golds(verifier, prompts["answer"].to_list(), where="train_rl prompts")
        tokenizer = AutoTokenizer.from_pretrained(str(sft))
        if not tokenizer.chat_template:
            raise ValueError(f"train_rl: the tokenizer in {sft} has no chat template")
        tokenizer.padding_side = "left"
        model = AutoModelForCausalLM.from_pretrained(
            str(sft), dtype=torch.float32 if settings.use_cpu else "auto"
        )
        reward = CorrectnessReward(
            verifier, truncation=settings.truncation, reflection_counter=reflection_counter
        )
        guard = GuardCallback(settings, on_log=on_log)
        _colocated_vllm_on_cpu(settings)
        from torch.utils.tensorboard import SummaryWriter

        tb_dir = work / TENSORBOARD
        callbacks = [CompleteGuard(), guard, TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(tb_dir)))]
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=[reward],
            args=_grpo_config(settings, ckpt_dir),
            train_dataset=_prompt_dataset(prompts, system_prompt),
            processing_class=tokenizer,
            callbacks=callbacks,
        )
        # the printer dumps every metric dict to stdout; progress goes through `logging` (GuardCallback)
        trainer.remove_callback(PrinterCallback)
        # exactly TRL's truncation rule: the last id is not an EOS (model or tokenizer) nor the pad id
        reward.eos_token_ids = frozenset([*trainer.eos_token_ids, tokenizer.pad_token_id])
        if checkpoint is not None:
            log.info("train_rl: resuming from %s", checkpoint)
        try:
            trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint is not None else None)
        except AlreadyComplete:  # the checkpoint holds the last step: its weights are loaded, nothing is left
            pass
        steps_done = int(trainer.state.global_step)
        history = guard.history
        final_reasons = check_guards(history, settings)

        summary: dict[str, Any] = {
            "stage": "rl",
            "model_dir": str(out),
            "sft_model_dir": str(sft),
            "fingerprint": fingerprint,
            "n_prompts": prompts.height,
            "target_steps": settings.max_steps,
            "steps_done": steps_done,
            "resumed_from": checkpoint.name if checkpoint is not None else None,
            "dropped_incomplete_checkpoints": dropped,
            "stopped_by_guard": bool(guard.stopped_at is not None),
            "stopped_at_step": guard.stopped_at,
            "stop_reasons": guard.reasons,
            "guard_status": "tripped" if final_reasons else "healthy",
            "guard_reasons": final_reasons,
            "final_metrics": history[-1] if history else {},
            "metrics_history": history,
            "threads": threads,
            "wall_s": round(time.perf_counter() - started, 1),
            "tensorboard_dir": str(tb_dir),
            "work_dir": str(work),
            "settings": to_dict(settings),
            "versions": library_versions(),
        }
        if guard.stopped_at is not None:
            log.warning("train_rl: stopped at step %d: %s", guard.stopped_at, "; ".join(guard.reasons))

        def build(tmp: Path) -> None:
            trainer.save_model(str(tmp))  # model (safetensors), config, generation config
            tokenizer.save_pretrained(str(tmp))  # tokenizer + chat template
            (tmp / "training_args.bin").unlink(missing_ok=True)  # a pickle; the settings are in the summary
            (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")

        publish_folder(build, out)
        return RunSummary(stage="rl", fingerprint=fingerprint, steps=steps_done, wall_s=summary["wall_s"],
                          resumed_from=summary["resumed_from"], stopped_by_guard=summary["stopped_by_guard"],
                          stop_reasons=tuple(guard.reasons), record=summary)
    finally:
        if own_verifier:
            verifier.close()
