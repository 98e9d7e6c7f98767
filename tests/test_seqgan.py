"""The SeqGAN family: the oracle, sampling, roll-out rewards, policy gradient, text data and
metrics on hand cases, and training runs of the tiny preset."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file

from hub_models import textdata
from hub_models.metrics import bleu, novelty, self_bleu
from hub_models.registry import FAMILIES
from hub_models.seqgan import (
    ROLLOUT_STRATEGIES,
    Discriminator,
    Generator,
    SeqGAN,
    SeqGANConfig,
    generate,
    inverse_cdf,
    make_oracle,
    nll,
    policy_gradient_loss,
    random_tokens,
    rollout_rewards,
    sample,
    update_rollout,
)
from hub_models.textdata import TextDataError
from training import cli

TINY = FAMILIES["seqgan"].make_trainer().presets["tiny"]


def tiny_config(**changes) -> SeqGANConfig:
    return SeqGANConfig(**{**TINY, **changes})


# -- the oracle ------------------------------------------------------------------------------


def test_oracle_is_regenerated_exactly_from_its_seed():
    config = SeqGANConfig()  # the paper's sizes
    a, b = make_oracle(config), make_oracle(config)
    other = make_oracle(dataclasses.replace(config, oracle_seed=1))
    for (name, x), y, z in zip(
        a.state_dict().items(), b.state_dict().values(), other.state_dict().values(), strict=True
    ):
        assert torch.equal(x, y), name
        assert name == "lstm.bias_hh_l0" or not torch.equal(x, z), name
    weights = a.out.weight
    assert abs(float(weights.mean())) < 0.02 and abs(float(weights.std()) - 1) < 0.02  # N(0, 1)


def test_oracle_prefers_its_own_samples_to_random_sequences():
    config = SeqGANConfig()
    oracle = make_oracle(config)
    own = generate(oracle, 500, config.seq_len, seed=1)
    random = random_tokens(config, 500, seed=1)
    assert nll(oracle, own) < nll(oracle, random) - 2  # measured: ~5.9 against ~11.2


# -- sampling --------------------------------------------------------------------------------


def test_inverse_cdf_picks_the_bucket_holding_u():
    probs = torch.tensor([[0.1, 0.2, 0.7], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    u = torch.tensor([0.25, 0.99, 0.0])
    assert inverse_cdf(probs, u).tolist() == [1, 1, 2]
    many = torch.tensor([[0.1, 0.2, 0.7]]).expand(20000, 3)
    counts = inverse_cdf(many, torch.rand(20000, generator=torch.Generator().manual_seed(0)))
    freq = counts.bincount(minlength=3).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.7]), atol=0.015)


def test_generate_is_seeded_and_independent_of_chunking():
    torch.manual_seed(0)
    policy = Generator(30, 8, 8)
    a = generate(policy, 50, 6, seed=3)
    b = generate(policy, 50, 6, seed=3, chunk=7)
    assert torch.equal(a, b) and a.shape == (50, 6)
    assert not torch.equal(a, generate(policy, 50, 6, seed=4))
    cold = generate(policy, 2000, 6, seed=3, temperature=0.3)
    hot = generate(policy, 2000, 6, seed=3, temperature=3.0)
    assert len(cold.unique()) <= len(hot.unique())


# -- rewards and the policy gradient ---------------------------------------------------------


def peaked_policy(vocab: int, favourite: int) -> Generator:
    """A policy that always emits ``favourite``: roll-outs become deterministic."""
    policy = Generator(vocab, 4, 4)
    with torch.no_grad():
        policy.out.weight.zero_()
        policy.out.bias.fill_(-50.0)
        policy.out.bias[favourite] = 50.0
    return policy


def test_rollout_strategies_agree_and_the_last_reward_is_the_sequence_score():
    config = tiny_config(seq_len=5)
    torch.manual_seed(0)
    discriminator = Discriminator(config).eval()
    rollout = peaked_policy(config.vocab_size, 3)
    tokens = torch.randint(config.vocab_size, (7, 5), generator=torch.Generator().manual_seed(1))
    results = [
        rollout_rewards(rollout, discriminator, tokens, 3, torch.Generator().manual_seed(0), s)
        for s in ROLLOUT_STRATEGIES
    ]
    for other in results[1:]:
        assert torch.allclose(results[0], other, atol=1e-6)
    # With a deterministic roll-out, the reward of prefix t is D's score of prefix + 3s.
    completed = tokens.clone()
    completed[:, 2:] = 3
    with torch.no_grad():
        expected = torch.sigmoid(discriminator(completed))
        assert torch.allclose(results[0][:, 1], expected, atol=1e-6)
        assert torch.allclose(results[0][:, -1], torch.sigmoid(discriminator(tokens)), atol=1e-6)


def test_rollout_rewards_are_probabilities_with_random_rollouts():
    config = tiny_config()
    torch.manual_seed(0)
    model = SeqGAN(config)
    tokens = sample(model, 8, 0)
    for strategy in ROLLOUT_STRATEGIES:
        r = rollout_rewards(
            model.generator, model.discriminator, tokens, 4, torch.Generator(), strategy
        )
        assert r.shape == tokens.shape and bool(((r > 0) & (r < 1)).all())


def test_policy_gradient_step_moves_towards_the_rewarded_token():
    torch.manual_seed(0)
    policy = Generator(4, 4, 4)
    start = torch.zeros(1, 1, dtype=torch.long)

    def first_token_probs() -> torch.Tensor:
        with torch.no_grad():
            return torch.softmax(policy(start)[0, 0], 0)

    before = first_token_probs()
    # Half the batch starts with token 1 (reward 1), half with token 2 (reward 0).
    tokens = torch.tensor([[1, 0]] * 8 + [[2, 0]] * 8)
    rewards = (tokens == 1).float()
    optimizer = torch.optim.SGD(policy.parameters(), lr=1.0)
    policy_gradient_loss(policy, tokens, rewards).backward()
    optimizer.step()
    after = first_token_probs()
    assert after[1] > before[1] + 0.01
    assert after[2] < before[2]


def test_rollout_policy_trails_the_generator():
    torch.manual_seed(0)
    rollout, policy = Generator(5, 3, 3), Generator(5, 3, 3)
    old = rollout.out.weight.clone()
    update_rollout(rollout, policy, keep=0.8)
    assert torch.allclose(rollout.out.weight, 0.8 * old + 0.2 * policy.out.weight)
    assert torch.equal(rollout.embed.weight, policy.embed.weight)


# -- config ----------------------------------------------------------------------------------


def test_config_derives_its_steps_and_phases():
    c = tiny_config()
    assert c.steps == c.mle_epochs + c.d_pretrain_rounds + c.adv_steps
    assert [c.phase(s) for s in range(c.steps)] == ["mle"] * c.mle_epochs + [
        "d_pretrain"
    ] * c.d_pretrain_rounds + ["adversarial"] * c.adv_steps
    with pytest.raises(ValueError, match="adv_steps"):
        tiny_config(steps=999)
    with pytest.raises(ValueError, match="level"):
        tiny_config(corpus="names")  # text needs a char or word level


def test_wide_filters_are_left_out_of_short_sequences():
    d = Discriminator(SeqGANConfig(corpus="idioms", level="char", seq_len=5, vocab_size=10))
    assert [conv.kernel_size[0] for conv in d.convs] == [1, 2, 3, 4, 5]


# -- text data -------------------------------------------------------------------------------


def test_builtin_corpora():
    idioms = textdata.load_corpus("idioms")
    assert len(idioms.lines) == 29502 and all(len(line) == 4 for line in idioms.lines)
    names = textdata.load_corpus("names").lines
    assert "Mary" in names and "Smith" in names and len(names) > 90000
    fortunes = textdata.load_corpus("fortunes").lines
    assert len(fortunes) > 3000 and all(8 <= len(f) <= 80 for f in fortunes)
    train, held = idioms.split()
    assert not set(train) & set(held) and len(held) == 2950
    assert idioms.split() == (train, held)  # fixed, not random per call


def test_offensive_fortunes_are_left_out(tmp_path, monkeypatch):
    (tmp_path / "fortunes").write_text("A clean little saying.\n%\nAnother one here.\n%\n")
    (tmp_path / "fortunes-o").write_text("Something offensive here.\n%\n")
    (tmp_path / "fortunes.dat").write_bytes(b"\x00\x01")
    monkeypatch.setattr(textdata, "fortune_folder", lambda: tmp_path)
    assert textdata.fortunes() == ["A clean little saying.", "Another one here."]


def test_encode_decode_round_trip():
    lines = ["abc", "ba", "toolongline"]
    vocab = textdata.build_vocabulary(lines, "char", 50)
    assert vocab[0] == textdata.END
    rows, kept = textdata.encode(lines, vocab, "char", 6)
    assert kept == ["abc", "ba"] and rows.shape == (2, 6) and rows[1, 2:].eq(0).all()
    assert textdata.decode(rows, vocab, "char") == ["abc", "ba"]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "is empty"),
        (b"  \n\n \t\n", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "binary"),
        (b"caf\xe9\n" * 20, "not UTF-8"),
        (b"one\ntwo\n", "at least 10"),
        (("x" * 200 + "\n").encode() * 20, "at most 80 characters"),
    ],
)
def test_bad_text_gets_a_clear_message(payload, message, tmp_path):
    path = tmp_path / "mine.txt"
    path.write_bytes(payload)
    with pytest.raises(TextDataError, match=message) as caught:
        textdata.read_user_file(path, 80)
    assert "mine.txt" in str(caught.value)


def test_huge_file_is_refused_without_being_read(tmp_path, monkeypatch):
    path = tmp_path / "huge.txt"
    with open(path, "wb") as handle:  # sparse: no disk space used
        handle.truncate(textdata.MAX_FILE_BYTES + 1)
    monkeypatch.setattr(type(path), "read_bytes", lambda self: pytest.fail("read a huge file"))
    with pytest.raises(TextDataError, match="MiB; the limit is 20 MiB"):
        textdata.read_user_file(path, 80)


def test_missing_file_or_folder(tmp_path):
    with pytest.raises(TextDataError, match="does not exist"):
        textdata.read_user_file(tmp_path / "nothing.txt", 80)
    with pytest.raises(TextDataError, match="is a folder"):
        textdata.read_user_file(tmp_path, 80)


def test_too_many_lines(monkeypatch):
    monkeypatch.setattr(textdata, "MAX_LINES", 5)
    with pytest.raises(TextDataError, match="take a sample"):
        textdata.parse_user_text(b"a\n" * 6, "many.txt", 80)


# -- metrics ---------------------------------------------------------------------------------


def test_bleu_on_hand_cases():
    ref = [list("the cat sat"), list("a dog ran")]
    assert bleu([list("the cat sat")], ref) == pytest.approx(1.0)
    assert bleu([list("xyz")], ref) == 0.0
    partial = bleu([list("the cat ran")], ref)
    assert 0.2 < partial < 1.0


def test_self_bleu_leaves_each_sample_out():
    same = [list("abcdef")] * 3
    assert self_bleu(same) == pytest.approx(1.0)
    distinct = [list("abcdef"), list("uvwxyz"), list("mnopqr")]
    assert self_bleu(distinct) == 0.0  # each would match itself perfectly if not left out


def test_novelty():
    assert novelty(["a", "b", "c", "d"], {"a", "b"}) == 0.5


# -- training --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("seqgan") / "run"
    assert cli.main(["train", "seqgan", "--preset", "tiny", "--out", str(out)]) == 0
    return out


def test_tiny_oracle_run_writes_a_publishable_folder(oracle_run):
    for name in (
        "model.safetensors",
        "config.json",
        "README.md",
        "eval.json",
        "sample.png",
        "replay.safetensors",
        "training.json",
    ):
        assert (oracle_run / name).is_file(), name
    metrics = json.loads((oracle_run / "eval.json").read_text())
    assert {"oracle_nll", "held_out_nll", "mle_oracle_nll", "oracle_entropy"} <= set(metrics)
    assert metrics["oracle_entropy"] < metrics["oracle_nll"]
    model = SeqGAN.load_folder(oracle_run)
    # The adversarial steps moved G away from its MLE twin.
    assert not torch.equal(model.generator.out.weight, model.mle_generator.out.weight)
    losses = [json.loads(line) for line in (oracle_run / "metrics.jsonl").read_text().splitlines()]
    assert all(v == v for row in losses for v in row.values())  # no NaN


def test_tiny_run_records_the_nll_curves(oracle_run):
    from safetensors.torch import load_file

    frames = load_file(str(oracle_run / "replay.safetensors"))
    assert set(frames) == {"step", "oracle_nll", "held_out_nll"}
    assert frames["step"][-1] == SeqGANConfig(**TINY).steps


def test_sample_and_evaluate_commands(oracle_run, tmp_path, capsys):
    out = tmp_path / "samples.txt"
    assert (
        cli.main(["sample", "seqgan", "--from", str(oracle_run), "--n", "5", "--out", str(out)])
        == 0
    )
    assert len(out.read_text().splitlines()) == 5
    capsys.readouterr()
    assert cli.main(["evaluate", "seqgan", "--from", str(oracle_run), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["metrics"]
    assert shown == json.loads((oracle_run / "eval.json").read_text())


def test_training_on_a_user_text_file(tmp_path, capsys):
    data = tmp_path / "pets.txt"
    data.write_text("\n".join(f"{a}{b}" for a in ("rex", "fido", "tom") for b in "abcdefgh"))
    out = tmp_path / "run"
    argv = [
        "train",
        "seqgan",
        "--preset",
        "tiny",
        "--data",
        str(data),
        "--corpus=pets",
        "--level=char",
        "--out",
        str(out),
    ]
    assert cli.main(argv) == 0
    model = SeqGAN.load_folder(out)
    assert model.config.tokens[0] == "\n" and set("rexfidotm") <= set(model.config.tokens)
    assert "z" not in model.config.tokens
    metrics = json.loads((out / "eval.json").read_text())
    assert 0 <= metrics["novelty"] <= 1 and 0 <= metrics["bleu4"] <= 1


def test_training_on_bad_text_exits_2_with_the_reason(tmp_path, capsys):
    data = tmp_path / "empty.txt"
    data.write_text("")
    argv = [
        "train",
        "seqgan",
        "--preset",
        "tiny",
        "--data",
        str(data),
        "--corpus=mine",
        "--level=char",
        "--out",
        str(tmp_path / "run"),
    ]
    assert cli.main(argv) == 2
    assert "empty.txt is empty" in capsys.readouterr().err


def test_oracle_with_data_is_refused(tmp_path, capsys):
    data = tmp_path / "x.txt"
    data.write_text("a\n" * 20)
    argv = [
        "train",
        "seqgan",
        "--preset",
        "tiny",
        "--data",
        str(data),
        "--out",
        str(tmp_path / "run"),
    ]
    assert cli.main(argv) == 2
    assert "--corpus=" in capsys.readouterr().err


# -- the benchmark's verdicts ----------------------------------------------------------------


def test_benchmark_verdicts_and_same_quality_interpolation():
    from benchmarks.seqgan import at_same_quality, markdown, verdicts

    def row(t, oracle, held):
        return {"temperature": t, "oracle_nll": oracle, "held_out_nll": held}

    rows = {
        "oracle (floor)": row(1.0, 5.9, 5.9),
        "random (untrained G)": row(1.0, 11.2, 8.5),
        "MLE": row(1.0, 9.0, 8.6),
        "SeqGAN": row(1.0, 8.7, 8.7),
        "MLE, T=0.95": row(0.95, 8.8, 8.7),
        "MLE, T=0.9": row(0.9, 8.6, 8.9),
    }
    checks = verdicts(rows)
    assert checks["oracle_nll_gain_over_mle"] == pytest.approx(0.3)
    assert checks["gain_at_least_0.25"] and not checks["held_out_nll_not_worse"]
    assert checks["mle_held_out_nll_at_seqgan_quality"] == pytest.approx(8.8)  # halfway
    assert at_same_quality({**rows, "SeqGAN": row(1.0, 8.0, 9.0)}) is None  # out of range
    speed = dict.fromkeys(
        (
            "generation_tokens_per_s",
            "adversarial_g_step_s",
            "rollout_per_prefix_s",
            "rollout_one_tensor_s",
            "one_tensor_over_per_prefix",
            "rollout_naive_s",
            "naive_over_per_prefix",
            "inverse_cdf_ms",
            "multinomial_ms",
            "multinomial_over_inverse_cdf",
        ),
        1.0,
    ) | {"threads": 1, "rollouts": 16}
    text = markdown(rows, checks, speed, 10000)
    assert "| SeqGAN | 1 | 8.700 | 8.700 |" in text and "has held-out NLL 8.800" in text


# -- the page's helpers ----------------------------------------------------------------------


def test_reward_html_escapes_text_and_colours_by_reward():
    from gallery.seqgan import Samples, reward_colour, rewards_html

    samples = Samples(torch.zeros(1, 2, dtype=torch.long), [["<b>", "⏎"]], ["<b>"])
    shown = rewards_html(samples, torch.tensor([[0.0, 1.0]]))
    assert "&lt;b&gt;" in shown and "<b>" not in shown
    assert 'title="reward 0.00"' in shown and 'title="reward 1.00"' in shown
    assert reward_colour(0.0).startswith("rgba(255, 0,") and reward_colour(1.0).startswith(
        "rgba(0, 200,"
    )
    assert "title=" not in rewards_html(samples, None)


def test_generated_text_stops_at_the_end_token():
    from gallery.seqgan import generate_samples

    config = tiny_config(corpus="mine", level="char", tokens=("\n", *"abc"), vocab_size=4)
    torch.manual_seed(0)
    found = generate_samples(SeqGAN(config), 20, 0, 1.0, "mle")
    for pieces, text, row in zip(found.pieces, found.texts, found.tokens.tolist(), strict=True):
        end = row.index(0) + 1 if 0 in row else len(row)
        assert len(pieces) == end and text == "".join(pieces).rstrip("⏎")
        assert set(text) <= set("abc")


class Killed(Exception):
    pass


def test_resume_in_the_adversarial_phase_is_the_run_it_would_have_been(tmp_path):
    """The roll-out policy (a delayed copy of G beside the bundle) is in the checkpoint."""
    from training.loop import RunOptions, train

    trainer = FAMILIES["seqgan"].make_trainer()
    config = SeqGANConfig(**{**TINY, "adv_steps": 3})
    last = config.steps - 1  # the third adversarial step: the roll-out policy exists by then

    class DiesAtLastStep(type(trainer)):
        def train_step(self, model, optimizers, data, ctx):
            if ctx.step == last:
                raise Killed
            return super().train_step(model, optimizers, data, ctx)

    straight = train(trainer, config, RunOptions(out=tmp_path / "straight", preset="tiny"))
    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        train(DiesAtLastStep(), config, RunOptions(out=out, preset="tiny", checkpoint_every=1))
    saved = load_file(str(out / "checkpoint" / "optim.safetensors"))
    assert any(key.startswith("trainer/rollout.") for key in saved)
    train(trainer, config, RunOptions(out=out, preset="tiny", resume=True, checkpoint_every=1))
    expected = load_file(str(straight / "model.safetensors"))
    got = load_file(str(out / "model.safetensors"))
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
