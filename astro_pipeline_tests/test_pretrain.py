"""The demo base model: tokenizer, a short from-scratch run, the pretrained kind, pass@1 measurement."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from astro_pipeline.config import from_dict
from astro_pipeline.data.synthetic import generate_rows
from astro_pipeline.llm.protocol import Sample
from astro_pipeline.train.base_eval import measure_pass_at_1
from astro_pipeline.train.pretrain import SUMMARY_FILE, encode_examples, lr_at, prompt_text, train_base_model
from astro_pipeline.train.demo_corpus import Document
from astro_pipeline.train.settings import BaseModelSettings
from astro_pipeline_tests.tiny_models import TINY, TINY_SYNTHETIC, demo_tokenizer


def test_tokenizer_digits_whitespace_and_unknown_text(tmp_path):
    tok = demo_tokenizer()
    pieces = tok.convert_ids_to_tokens(tok("A: 28 * 3 = 84\n\nB:", add_special_tokens=False)["input_ids"])
    assert pieces == ["A", ":", "Ġ", "2", "8", "Ġ*", "Ġ", "3", "Ġ=", "Ġ", "8", "4", "Ċ", "Ċ", "B", ":"]
    assert tok.convert_ids_to_tokens(tok("Try x = 5.", add_special_tokens=False)["input_ids"]) == [
        "Try", "Ġx", "Ġ=", "Ġ", "5", "."]
    assert tok.unk_token_id is None or tok.unk_token_id not in tok("Zürich ≠ 😀 naïve")["input_ids"]
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    for text in ("Zürich ≠ 😀 naïve", "Wait, is this right?\n\nLet's go back.", "x  y\t z"):
        assert again.decode(again(text, add_special_tokens=False)["input_ids"]) == text
    chat = [{"role": "user", "content": "Start with 2."}, {"role": "assistant", "content": "A: 2 + 2 = 4"}]
    assert again.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True) == "<|user|>\nStart with 2.\n<|assistant|>\n"
    assert again.apply_chat_template(chat, tokenize=False) == "<|user|>\nStart with 2.\n<|assistant|>\nA: 2 + 2 = 4<|eos|>\n"
    # TRL's assistant_only_loss needs the generation markers to produce a mask
    mask = again.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)["assistant_masks"]
    assert 0 < sum(mask) < len(mask)


def test_prompt_and_completion_tokenize_like_their_concatenation():
    tok = demo_tokenizer()
    row = generate_rows("pretrain", TINY_SYNTHETIC)[0]
    doc = Document(row["problem"], row["solution"], "problem", row["answer"])
    (ids, first_loss), = encode_examples(tok, [doc], loss_on_prompt=False)
    whole = tok(prompt_text(tok, row["problem"]) + row["solution"], add_special_tokens=False)["input_ids"]
    assert ids[:-1] == whole and ids[-1] == tok.eos_token_id
    assert tok.decode(ids[first_loss:-1]) == row["solution"]
    (same, from_start), = encode_examples(tok, [doc], loss_on_prompt=True)  # a language model of the whole text
    assert same == ids and from_start == 0


def test_demo_tokenizer_holds_every_word_of_the_bank_and_the_world_whole():
    import re

    from astro_pipeline.cloning.phrases import bank_text
    from astro_pipeline.cloning.settings import PhraseBank
    from astro_pipeline.train.demo_corpus import pretraining_documents, tokenizer_texts
    from astro_pipeline.train.tokenizer import train_demo_tokenizer

    bank = PhraseBank()
    docs = pretraining_documents(TINY_SYNTHETIC, bank, 0.1, 0, forward_docs_share=0.5)
    tok = train_demo_tokenizer(tokenizer_texts(docs, bank))
    texts = [bank_text(bank), *(d.prompt + "\n" + d.completion for d in docs)]
    pieces = {p for t in texts for p in re.findall(r"[0-9]| ?[A-Za-z]+| ?[^\sA-Za-z0-9]+|\s", t)}
    split = sorted(p for p in pieces if len(tok(p, add_special_tokens=False)["input_ids"]) != 1)
    assert split == []
    sentence = "But wait, are we solving the problem correctly so far?"
    assert len(tok(sentence, add_special_tokens=False)["input_ids"]) == 12  # one token per word and mark


def test_pretraining_documents_mix_problems_forward_arithmetic_and_plain_bank_sentences():
    from astro_pipeline.cloning.settings import PhraseBank
    from astro_pipeline.train.demo_corpus import PLAIN_PROMPT, pretraining_documents

    bank = PhraseBank()
    docs = pretraining_documents(TINY_SYNTHETIC, bank, 0.1, 0, forward_docs_share=0.5)
    kinds = [d.kind for d in docs]
    assert kinds.count("problem") == 200 and kinds.count("forward") == 100 and kinds.count("plain") == 20
    plain = [d for d in docs if d.kind == "plain"]
    assert all(d.prompt == PLAIN_PROMPT and "\\boxed" not in d.completion or "answer" in d.completion for d in plain)
    phrases = {p for field in ("question", "doubt", "restart", "confirmation") for p in getattr(bank, field)}
    assert any(any(p in d.completion for p in phrases) for d in plain)
    # no problem document reflects: the base model never sees search
    assert not any(p in d.completion for d in docs if d.kind != "plain" for p in phrases)
    forward = [d for d in docs if d.kind == "forward"]
    chain = [d for d in forward if d.prompt.startswith("Start with ")]
    table = [d for d in forward if d.prompt.startswith("Find the results for x = ")]
    assert len(chain) == len(table) == 50 and all(d.completion.startswith("Try x = ") for d in table)
    assert not any("matches" in d.completion for d in forward)  # no target to meet, no check
    test = {r["problem"] for r in generate_rows("test", TINY_SYNTHETIC)} | {r["problem"] for r in generate_rows("train", TINY_SYNTHETIC)}
    assert not test & {d.prompt for d in docs}


def test_precision_auto_uses_bf16_only_where_the_cpu_has_it():
    import torch

    from astro_pipeline.llm.device import training_autocast

    cpu = torch.device("cpu")
    assert training_autocast("auto", cpu, frozenset({"avx2", "fma"}))[0] is False
    assert training_autocast("auto", cpu, frozenset({"avx512f", "avx512_bf16"}))[0] is True
    assert training_autocast("auto", cpu, frozenset({"amx_bf16"}))[0] is True
    assert training_autocast("fp32", cpu, frozenset({"amx_bf16"}))[0] is False
    assert training_autocast("bf16", cpu, frozenset())[0] is True
    with pytest.raises(ValueError):
        training_autocast("fp8", cpu, frozenset())


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    s = BaseModelSettings(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, s) == pytest.approx(1e-4) and lr_at(9, s) == pytest.approx(1e-3)
    assert lr_at(55, s) == pytest.approx(0.55e-3, rel=1e-6)
    assert lr_at(100, s) == pytest.approx(1e-4)
    assert all(lr_at(i, s) >= lr_at(i + 1, s) for i in range(10, 100))


def test_short_demo_run_saves_a_folder_plain_transformers_loads(tmp_path):
    logged = []
    settings = dataclasses.replace(TINY, steps=6, log_every=2, threads=1, warmup_steps=2)
    summary = train_base_model(settings, TINY_SYNTHETIC, tmp_path / "m", on_log=lambda step, v: logged.append((step, v)))
    assert [step for step, _ in logged] == [2, 4, 6]
    assert all(set(v) == {"loss", "lr"} and math.isfinite(v["loss"]) for _, v in logged)
    assert logged[-1][1]["loss"] < logged[0][1]["loss"]  # six steps at lr 3e-3 already learn the format's frequent tokens
    assert summary["steps"] == 6 and summary["settings"]["hidden_size"] == 64 and "torch" in summary["versions"]
    # a run too short to reach target_check_from holds nothing out and never checks
    n_docs = (TINY_SYNTHETIC.n_pretrain + summary["n_forward_documents"] + summary["n_check_documents"]
              + summary["n_plain_documents"])
    assert summary["n_train_examples"] == n_docs and summary["target_checks"] == []
    from astro_pipeline.llm.device import cpu_has_native_bf16

    assert summary["bf16_autocast"] is cpu_has_native_bf16() and summary["precision_reason"]  # recorded either way
    assert json.loads((tmp_path / "m" / SUMMARY_FILE).read_text())["n_params"] == summary["n_params"]
    assert (tmp_path / "m" / "model.safetensors").is_file()
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m")
    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 2
    assert model.generation_config.eos_token_id == tok.eos_token_id
    prompt = tok.apply_chat_template([{"role": "user", "content": "Start with 4."}], return_tensors="pt", add_generation_prompt=True, return_dict=True)
    out = model.generate(**prompt, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] <= prompt["input_ids"].shape[1] + 3


def test_pretrained_kind_resolves_and_checks_a_local_folder(tmp_path):
    model_dir = tmp_path / "pre"
    train_base_model(dataclasses.replace(TINY, steps=1, threads=1), TINY_SYNTHETIC, model_dir)
    summary = train_base_model(BaseModelSettings(kind="pretrained", model=str(model_dir)), TINY_SYNTHETIC, tmp_path / "out")
    assert summary["kind"] == "pretrained" and summary["model_dir"] == str(model_dir.resolve())
    assert summary["model_type"] == "llama" and summary["has_chat_template"]
    with pytest.raises(FileNotFoundError):
        train_base_model(BaseModelSettings(kind="pretrained", model=str(tmp_path / "nope")), TINY_SYNTHETIC, tmp_path / "o2")
    with pytest.raises(ValueError):
        from_dict(BaseModelSettings, {"kind": "pretrained"})


class _Oracle:
    """A backend double: right answer for even-numbered problems on the first half of the samples."""

    name = "oracle"

    def __init__(self, rows):
        self.answers = {r["problem"]: (i, r["answer"]) for i, r in enumerate(rows)}

    def render(self, request):
        return request.messages[0]["content"]

    def generate(self, requests):
        out = []
        for req in requests:
            i, answer = self.answers[req.messages[0]["content"]]
            n = req.params.n
            texts = [f"\\boxed{{{answer}}}" if i % 2 == 0 and (j < n / 2 or req.params.temperature == 0) else "\\boxed{-1}" for j in range(n)]
            out.append([Sample(t, "stop", 3, -1.0) for t in texts])
        return out


def test_pass_at_1_counts_verifier_verdicts():
    settings = BaseModelSettings(eval_samples=4, eval_problems=10)
    rows = generate_rows("test", TINY_SYNTHETIC)[:10]
    result = measure_pass_at_1("unused", settings, TINY_SYNTHETIC, backend=_Oracle(rows))
    assert result["n_problems"] == 10 and result["n_samples"] == 4
    assert result["pass_at_1"] == pytest.approx(0.25)  # half the problems, half the samples
    assert result["pass_at_4"] == pytest.approx(0.5) and result["mixed_fraction"] == pytest.approx(0.5)
    assert result["greedy"] == pytest.approx(0.5)
    assert result["temperature"] == settings.eval_temperature


def test_pass_at_1_runs_through_the_real_backend(tmp_path):
    model_dir = tmp_path / "m"
    train_base_model(dataclasses.replace(TINY, steps=2, threads=1), TINY_SYNTHETIC, model_dir)
    settings = dataclasses.replace(TINY, eval_samples=2, eval_problems=3, eval_max_new_tokens=8)
    result = measure_pass_at_1(model_dir, settings, TINY_SYNTHETIC)
    assert result["backend"] == "transformers" and 0.0 <= result["pass_at_1"] <= 1.0
    assert result["truncated_fraction"] > 0.5  # an untrained model does not finish in 8 tokens


def test_training_stops_once_the_held_out_target_is_reached(tmp_path, monkeypatch):
    from astro_pipeline.train import pretrain

    values = iter([0.2, 0.5, 0.9])
    seen_rows = []

    def fake_check(backend, rows, *args):
        seen_rows.append(rows)
        return next(values)

    monkeypatch.setattr(pretrain, "sampled_pass_at_1", fake_check)
    logged = []
    settings = dataclasses.replace(TINY, steps=20, threads=1, target_pass_at_1=0.45, target_check_from=4,
                                   target_check_every=3, dev_problems=7, log_every=100)
    summary = train_base_model(settings, TINY_SYNTHETIC, tmp_path / "m", on_log=lambda s, v: logged.append((s, v)))
    assert summary["steps"] == 7 and summary["stopped_at_target"] and summary["max_steps"] == 20
    assert [c["step"] for c in summary["target_checks"]] == [4, 7]
    assert [(s, v["dev_pass_at_1"]) for s, v in logged] == [(4, 0.2), (7, 0.5)]
    # the held-out rows are the last pretraining problems and were not trained on
    from astro_pipeline.train.demo_corpus import pretraining_documents

    docs = pretraining_documents(TINY_SYNTHETIC, None, 0.0, settings.seed, settings.forward_docs_share,
                                 settings.check_docs_share)
    held = [d for d in docs if d.kind == "problem"][-7:]
    assert seen_rows[0] == [{"problem": d.prompt, "answer": d.answer} for d in held]
    assert summary["n_train_examples"] == len(docs) - 7


def test_target_check_runs_through_the_real_backend_and_verifier(tmp_path):
    settings = dataclasses.replace(TINY, steps=3, threads=1, target_pass_at_1=0.5, target_check_from=2,
                                   target_check_every=1, dev_problems=3, dev_samples=1, eval_max_new_tokens=4)
    summary = train_base_model(settings, TINY_SYNTHETIC, tmp_path / "m")
    assert [c["step"] for c in summary["target_checks"]] == [2, 3]
    assert all(c["dev_pass_at_1"] == 0.0 for c in summary["target_checks"])  # 4 tokens cannot hold a boxed answer
    assert summary["steps"] == 3 and not summary["stopped_at_target"]
