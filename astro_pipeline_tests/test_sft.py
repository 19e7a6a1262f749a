"""SFT stage: corpus selection, loss masking, full and LoRA training, saved folder, work-dir bookkeeping.

Tiny random Llamas built on the fly (hidden 64, 2 layers); nothing is downloaded.
"""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch

from astro_pipeline.config import from_dict, to_dict
from astro_pipeline.train.sft import (
    RUN_FILE,
    build_trainer,
    length_grouped_order,
    select_examples,
    train_sft,
)
from astro_pipeline.train.runs import complete_checkpoints, prepare_run
from astro_pipeline.train.sft_main import _forward_metrics
from astro_pipeline.train.sft_settings import SFTSettings
from astro_pipeline.train.sft_tiny import tiny_base_model, tiny_corpus


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # the cores are shared
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def corpus() -> pl.DataFrame:
    return tiny_corpus(64)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, corpus) -> str:
    return tiny_base_model(tmp_path_factory.mktemp("base"), corpus)


def quick(**overrides) -> SFTSettings:
    values = dict(
        learning_rate=3e-3, batch_size=8, max_length=512, threads=1, progress_bar=False, report_to=(),
        save_steps=1000, logging_steps=5, warmup_ratio=0.1,
    )
    values.update(overrides)
    return SFTSettings(**values)


# -- settings and corpus ----------------------------------------------------------------------------


def test_settings_are_strict_and_round_trip():
    s = from_dict(SFTSettings, {"method": "lora", "kinds": ["direct_arm"], "learning_rate": 1})
    assert s.kinds == ("direct_arm",) and s.learning_rate == 1.0
    assert from_dict(SFTSettings, to_dict(s)) == s
    with pytest.raises(ValueError, match="method"):
        SFTSettings(method="qlora")
    with pytest.raises(ValueError, match="kinds"):
        SFTSettings(kinds=("direct", "beam"))
    with pytest.raises(ValueError, match="unknown"):
        from_dict(SFTSettings, {"lr": 1e-3})
    # paper defaults
    d = SFTSettings()
    assert (d.method, d.epochs, d.learning_rate, d.lr_scheduler, d.max_length, d.completion_only_loss) == (
        "full", 1.0, 3e-6, "cosine", 8192, False,
    )


def test_select_examples_filters_kinds_in_a_canonical_order(corpus):
    astro = select_examples(corpus, ("direct", "search"))
    assert set(astro["kind"]) == {"direct", "search"}
    assert astro.height == corpus.filter(pl.col("kind") != "direct_arm").height
    # the warehouse may return rows in any order; the selection (hence the seeded data order) must not change
    shuffled = corpus.sample(fraction=1.0, shuffle=True, seed=3)
    assert select_examples(shuffled, ("direct", "search")).equals(astro)
    arm = select_examples(corpus, ("direct_arm",))
    assert set(arm["kind"]) == {"direct_arm"} and arm.height > 0
    with pytest.raises(ValueError, match="no corpus rows"):
        select_examples(corpus.filter(pl.col("kind") == "direct"), ("search",))
    with pytest.raises(ValueError, match="lacks column"):
        select_examples(corpus.drop("completion"), ("direct",))


# -- loss masking -------------------------------------------------------------------------------------


def test_completion_only_masks_exactly_the_prompt(base_dir, corpus, tmp_path):
    rows = select_examples(corpus, ("direct", "search"))
    all_tokens = build_trainer(base_dir, rows, quick(completion_only_loss=False, max_steps=1), tmp_path / "a")
    completion = build_trainer(base_dir, rows, quick(completion_only_loss=True, max_steps=1), tmp_path / "b")
    tok = all_tokens.processing_class
    assert len(all_tokens.train_dataset) == rows.height
    for i in range(4):
        ids = all_tokens.train_dataset[i]["input_ids"]
        assert completion.train_dataset[i]["input_ids"] == ids
        prompt_text = tok.apply_chat_template(
            [{"role": "user", "content": rows["prompt"][i]}], tokenize=False, add_generation_prompt=True
        )
        prompt_ids = tok(prompt_text, add_special_tokens=False)["input_ids"]
        n = len(prompt_ids)
        assert ids[:n] == prompt_ids
        # all tokens (paper): every label is the input token, prompt included
        assert all_tokens.train_dataset[i]["labels"] == ids
        # completion only: the prompt is -100, the CoT and its EOS are learned
        labels = completion.train_dataset[i]["labels"]
        assert labels[:n] == [-100] * n
        assert labels[n:] == ids[n:]
        assert tok.eos_token_id in labels[n:]
        assert tok.decode(ids[n:], skip_special_tokens=True).strip().startswith(rows["completion"][i][:20])


# -- training -----------------------------------------------------------------------------------------


def test_full_sft_learns_saves_a_loadable_folder_and_resumes_idempotently(base_dir, corpus, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = quick(max_steps=40, epochs=20.0, save_steps=20, report_to=("tensorboard",))
    seen: list[tuple[int, dict]] = []
    out, work = tmp_path / "out", tmp_path / "work"
    summary = train_sft(base_dir, corpus, settings, str(out), work_dir=str(work), on_log=lambda s, m: seen.append((s, m)))

    # the loss falls over a few dozen steps
    losses = [m["loss"] for _, m in seen]
    assert [s for s, _ in seen] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert losses[-1] < 0.6 * losses[0], losses
    assert summary.record["steps"] == 40 and summary.record["final_loss"] == pytest.approx(losses[-1])
    for key in ("loss", "learning_rate", "grad_norm", "tokens_per_s", "num_tokens"):
        assert all(key in m and m[key] >= 0 for _, m in seen), key
    assert all(m["tokens_per_s"] > 0 for _, m in seen)
    # cosine: the lr decays towards 0 at the end of the (capped) run
    assert seen[-1][1]["learning_rate"] < 0.1 * settings.learning_rate
    assert summary.record["n_examples_by_kind"] == {"direct": 16, "search": 32}
    assert list((work / "tensorboard").glob("events.out.tfevents.*"))

    # the saved folder: plain model + tokenizer with chat template + settings/versions
    for name in ("model.safetensors", "config.json", "tokenizer.json", "settings.json", "versions.json", "sft_summary.json"):
        assert (out / name).is_file(), name
    assert json.loads((out / "settings.json").read_text()) == to_dict(settings)
    assert "torch" in json.loads((out / "versions.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Start with 3."}], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|assistant|>\n")
    ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
    assert model.generate(**ids, max_new_tokens=3, do_sample=False).shape[1] == ids["input_ids"].shape[1] + 3
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    assert not torch.equal(model.model.embed_tokens.weight, base.model.embed_tokens.weight)

    # rerun with the same settings: resumes from the final checkpoint, trains nothing, same weights
    again = train_sft(base_dir, corpus, settings, str(out), work_dir=str(work), on_log=lambda s, m: seen.append((s, m)))
    assert again.record["resumed_from"] == "checkpoint-40" and again.record["steps"] == 40
    assert len(seen) == 8
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(reloaded.model.embed_tokens.weight, model.model.embed_tokens.weight)

    # other settings: the old checkpoints belong to another run and are not resumed
    other = train_sft(base_dir, corpus, quick(max_steps=2, learning_rate=1e-3), str(out), work_dir=str(work))
    assert other.record["resumed_from"] is None and set(other.record["discarded_checkpoints"]) == {"checkpoint-20", "checkpoint-40"}
    assert other.record["steps"] == 2


def test_lora_is_merged_into_a_plain_model(base_dir, corpus, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    settings = quick(method="lora", lora_r=4, lora_alpha=8, learning_rate=1e-2, max_steps=6, logging_steps=2)
    out = tmp_path / "out"
    summary = train_sft(base_dir, corpus, settings, str(out), work_dir=str(tmp_path / "work"))
    assert summary.record["method"] == "lora" and summary.record["steps"] == 6
    assert not (out / "adapter_config.json").exists()
    model = AutoModelForCausalLM.from_pretrained(out)
    assert type(model) is LlamaForCausalLM
    assert not any("lora" in name for name, _ in model.named_parameters())
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    # LoRA leaves the embeddings alone and changes the adapted linear layers
    assert torch.equal(model.model.embed_tokens.weight, base.model.embed_tokens.weight)
    changed = [
        name for (name, p), (_, q) in zip(model.named_parameters(), base.named_parameters()) if not torch.equal(p, q)
    ]
    assert any("q_proj" in n for n in changed) and any("down_proj" in n for n in changed)
    assert AutoTokenizer.from_pretrained(out).chat_template


def test_direct_arm_kind_trains_on_its_rows_only(base_dir, corpus, tmp_path):
    summary = train_sft(
        base_dir, corpus, quick(kinds=("direct_arm",), max_steps=1, packing=True), str(tmp_path / "o"), work_dir=str(tmp_path / "w")
    )
    assert summary.record["n_examples_by_kind"] == {"direct_arm": 16}
    assert summary.record["n_train_rows"] < 16  # packed into max_length rows
    assert summary.record["steps"] == 1


def test_padding_free_batches_train_like_padded_ones(base_dir, corpus, tmp_path):
    """Padding-free rows (one flat row per batch, attention kept per example) must give the padded loss.

    On CPU (sdpa) this holds only because the forward runs without a KV cache object, which would make
    transformers skip the per-example mask; a cross-example attention leak changes the loss at 1e-2.
    """
    losses = {}
    for padding_free in (False, True):
        got = []
        train_sft(base_dir, corpus, quick(padding_free=padding_free, max_steps=2, logging_steps=1),
                  str(tmp_path / f"o{padding_free}"), work_dir=str(tmp_path / f"w{padding_free}"),
                  on_log=lambda s, m: got.append(m))
        losses[padding_free] = [m["loss"] for m in got]
        if padding_free:
            assert got[0]["num_tokens"] == padded_tokens  # the same examples, no pad tokens either way
        else:
            padded_tokens = got[0]["num_tokens"]
    assert losses[True] == pytest.approx(losses[False], rel=1e-5)


def test_length_grouped_order_is_seeded_and_groups_similar_lengths():
    import random

    lengths = [random.Random(i).randint(10, 300) for i in range(400)]
    order = length_grouped_order(lengths, 8, seed=0)
    assert sorted(order) == list(range(400))
    assert order == length_grouped_order(lengths, 8, seed=0) != length_grouped_order(lengths, 8, seed=1)

    def padding(o):  # padding share of batches of 8 taken in this order
        batches = [[lengths[i] for i in o[k : k + 8]] for k in range(0, len(o), 8)]
        return 1 - sum(map(sum, batches)) / sum(8 * max(b) for b in batches)

    shuffled = list(range(400))
    random.Random(0).shuffle(shuffled)
    assert padding(order) < 0.25 * padding(shuffled)
    assert max(lengths[i] for i in order[:8]) == max(lengths)  # longest batch first: OOM shows at once


def test_length_grouped_run_resumes_exactly_after_a_crash(base_dir, corpus, tmp_path):
    """A run that dies at step 13 resumes from checkpoint-10 and continues with the same batches.

    12 steps make an epoch here, so the resumed part also crosses an epoch boundary. Same weights,
    optimizer, schedule and data give the same per-step loss (1e-5 relative); a repeated or skipped
    batch would change it by ~1e-2.
    """
    s = quick(batch_size=4, sampling="group_by_length", max_steps=18, epochs=10.0, save_steps=5, logging_steps=1)
    reference: dict[int, float] = {}
    train_sft(base_dir, corpus, s, str(tmp_path / "ref"), work_dir=str(tmp_path / "ref_work"),
              on_log=lambda step, m: reference.__setitem__(step, m["loss"]))

    class Crash(Exception):
        pass

    def crash_at_13(step, metrics):
        if step == 13:
            raise Crash

    with pytest.raises(Crash):
        train_sft(base_dir, corpus, s, str(tmp_path / "out"), work_dir=str(tmp_path / "work"), on_log=crash_at_13)
    resumed: dict[int, float] = {}
    summary = train_sft(base_dir, corpus, s, str(tmp_path / "out"), work_dir=str(tmp_path / "work"),
                        on_log=lambda step, m: resumed.__setitem__(step, m["loss"]))
    assert summary.record["resumed_from"] == "checkpoint-10" and summary.record["steps"] == 18
    assert sorted(resumed) == list(range(11, 19))
    for step, loss in resumed.items():
        assert loss == pytest.approx(reference[step], rel=1e-5), step


# -- bookkeeping --------------------------------------------------------------------------------------


def _fake_checkpoint(root, step, complete=True):
    path = root / "checkpoints" / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text("{}")
    return path


def test_work_dir_keeps_only_complete_checkpoints_of_the_same_run(tmp_path):
    def prepare(run, resume=True):  # what train_sft does on the main process
        kept = prepare_run(tmp_path, run, run_file=RUN_FILE, resume=resume, other_run="discard", who="sft")
        return kept.discarded + kept.dropped_incomplete

    run = {"fingerprint": "abc"}
    _fake_checkpoint(tmp_path, 5)
    _fake_checkpoint(tmp_path, 10, complete=False)  # killed while saving
    (tmp_path / RUN_FILE).write_text(json.dumps(run))
    assert prepare(run) == ["checkpoint-10"]
    assert [p.name for p in complete_checkpoints(tmp_path / "checkpoints")] == ["checkpoint-5"]

    assert prepare({"fingerprint": "other"}) == ["checkpoint-5"]
    assert json.loads((tmp_path / RUN_FILE).read_text()) == {"fingerprint": "other"}

    _fake_checkpoint(tmp_path, 7)
    assert prepare({"fingerprint": "other"}, resume=False) == ["checkpoint-7"]


def test_metrics_forwarding_waits_for_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    got = []
    path.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "lo')
    offset = _forward_metrics(path, 0, lambda s, m: got.append((s, m)))
    assert got == [(1, {"loss": 2.0})]
    with path.open("a") as fh:
        fh.write('ss": 1.5}\n')
    _forward_metrics(path, offset, lambda s, m: got.append((s, m)))
    assert got == [(1, {"loss": 2.0}), (2, {"loss": 1.5})]
