"""SeqGAN's benchmark (`python -m benchmarks seqgan`): the oracle table and the speed numbers.

Quality, one oracle seed, one run: the oracle NLL of samples (quality) and the NLL of held-out
oracle data (diversity) for a random generator, the MLE-only generator and the SeqGAN
generator of the published oracle model, plus the MLE generator at lower temperatures (the
"Language GANs Falling Short" check: does SeqGAN beat what temperature alone buys?).
Speed, side by side in the same process: inverse-CDF sampling against torch.multinomial, the
roll-out strategies (the chosen per-prefix batching against the one-big-tensor batching and
the authors' naive loop), generation tokens/s and the time of one adversarial G step.
"""

from __future__ import annotations

import itertools
import time

import torch

from benchmarks.timing import median_seconds, report_table
from hub_models import hub
from hub_models.registry import FAMILIES
from hub_models.seqgan import (
    ROLLOUT_STRATEGIES,
    Generator,
    SeqGAN,
    generate,
    init_generator,
    inverse_cdf,
    nll,
    policy_gradient_loss,
    rollout_rewards,
)
from training.seqgan import oracle_data

FAMILY = FAMILIES["seqgan"]
REQUIRED_GAIN = 0.25  # nats of oracle NLL SeqGAN must gain over MLE (the paper: 0.30)
TEMPERATURES = (0.95, 0.9, 0.85, 0.8)


def oracle_table(model: SeqGAN, n: int) -> dict[str, dict[str, float]]:
    """Rows: random, MLE, SeqGAN, MLE at lower temperatures; columns: both NLLs."""
    c = model.config
    data = oracle_data(c)
    held_out = data.held_out[:n]
    torch.manual_seed(c.seed)
    random = Generator(c.vocab_size, c.emb_dim, c.hidden_dim)
    init_generator(random)
    rows: dict[str, dict[str, float]] = {}

    def score(name: str, policy: Generator, temperature: float = 1.0) -> None:
        fake = generate(policy.eval(), n, c.seq_len, 0, temperature)
        rows[name] = {
            "temperature": temperature,
            "oracle_nll": nll(data.oracle, fake),
            "held_out_nll": nll(policy, held_out, temperature),
        }

    rows["oracle (floor)"] = {
        "temperature": 1.0,
        "oracle_nll": nll(data.oracle, held_out),
        "held_out_nll": nll(data.oracle, held_out),
    }
    score("random (untrained G)", random)
    score("MLE", model.mle_generator)
    score("SeqGAN", model.generator)
    for t in TEMPERATURES:
        score(f"MLE, T={t}", model.mle_generator, t)
    return rows


def verdicts(rows: dict[str, dict[str, float]]) -> dict[str, float | bool]:
    mle, seqgan = rows["MLE"], rows["SeqGAN"]
    gain = mle["oracle_nll"] - seqgan["oracle_nll"]
    return {
        "oracle_nll_gain_over_mle": round(gain, 4),
        "gain_at_least_0.25": gain >= REQUIRED_GAIN,
        "held_out_nll_not_worse": seqgan["held_out_nll"] <= mle["held_out_nll"],
        "mle_held_out_nll_at_seqgan_quality": at_same_quality(rows),
    }


def at_same_quality(rows: dict[str, dict[str, float]]) -> float | None:
    """Held-out NLL of the MLE generator cooled to SeqGAN's oracle NLL: linear interpolation
    between the two temperatures that bracket it (None if none do). Below SeqGAN's held-out
    NLL, temperature alone buys SeqGAN's quality more cheaply (Caccia et al.)."""
    points = sorted(
        (r["oracle_nll"], r["held_out_nll"]) for k, r in rows.items() if k.startswith("MLE")
    )
    target = rows["SeqGAN"]["oracle_nll"]
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if x0 <= target <= x1 and x1 > x0:
            return round(y0 + (y1 - y0) * (target - x0) / (x1 - x0), 4)
    return None


# -- speed -----------------------------------------------------------------------------------


def speed(model: SeqGAN, quick: bool) -> dict[str, float]:
    c = model.config
    repeats = 3 if quick else 10
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(1024, c.vocab_size, generator=g) * 3, 1)
    u = torch.rand(1024, generator=g)
    out: dict[str, float] = {"threads": torch.get_num_threads()}
    out["inverse_cdf_ms"] = 1000 * median_seconds(lambda: inverse_cdf(probs, u), repeats * 5)
    out["multinomial_ms"] = 1000 * median_seconds(
        lambda: torch.multinomial(probs, 1, generator=g), repeats * 5
    )
    out["multinomial_over_inverse_cdf"] = out["multinomial_ms"] / out["inverse_cdf_ms"]

    n = 2000 if quick else 10000
    seconds = median_seconds(lambda: generate(model.generator, n, c.seq_len, 0), 1 if quick else 3)
    out["generation_tokens_per_s"] = n * c.seq_len / seconds

    tokens = generate(model.generator, c.batch_size, c.seq_len, 1)
    rollouts = 4 if quick else c.rollouts
    for strategy in ROLLOUT_STRATEGIES:
        out[f"rollout_{strategy}_s"] = median_seconds(
            lambda s=strategy: rollout_rewards(
                model.generator, model.discriminator, tokens, rollouts, g, s
            ),
            1 if quick else 3,
        )
    out["rollouts"] = rollouts
    out["naive_over_per_prefix"] = out["rollout_naive_s"] / out["rollout_per_prefix_s"]
    out["one_tensor_over_per_prefix"] = out["rollout_one_tensor_s"] / out["rollout_per_prefix_s"]

    # One adversarial G step as training takes it: a batch, its rewards, the update.
    policy = Generator(c.vocab_size, c.emb_dim, c.hidden_dim)
    policy.load_state_dict(model.generator.state_dict())
    optimizer = torch.optim.Adam(policy.parameters(), lr=c.lr_adv)

    def g_step() -> None:
        batch = generate(policy, c.batch_size, c.seq_len, 2)
        rewards = rollout_rewards(model.generator, model.discriminator, batch, rollouts, g)
        loss = policy_gradient_loss(policy, batch, rewards)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    out["adversarial_g_step_s"] = median_seconds(g_step, 1 if quick else 3)
    return out


def markdown(rows: dict[str, dict[str, float]], checks: dict, fast: dict, n: int) -> str:
    cooled = checks["mle_held_out_nll_at_seqgan_quality"]
    same_quality = (
        "No MLE temperature in the table reaches SeqGAN's oracle NLL."
        if cooled is None
        else f"MLE cooled to SeqGAN's oracle NLL (interpolated between temperatures) has "
        f"held-out NLL {cooled:.3f}, against SeqGAN's {rows['SeqGAN']['held_out_nll']:.3f}."
    )
    lines = [
        f"**Oracle experiment** (vocabulary 5,000, length 20; {n:,} samples and {n:,} held-out "
        "oracle sequences; seed 0)",
        "",
        "| generator | temperature | oracle NLL (quality) | held-out NLL (diversity) |",
        "| --- | --- | --- | --- |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['temperature']:g} | {r['oracle_nll']:.3f} | {r['held_out_nll']:.3f} |"
        )
    lines += [
        "",
        f"SeqGAN's oracle-NLL gain over MLE: **{checks['oracle_nll_gain_over_mle']:.3f} nats** "
        f"(target {REQUIRED_GAIN}; the paper: 0.30); held-out NLL not worse than MLE's: "
        f"**{'yes' if checks['held_out_nll_not_worse'] else 'no'}**. {same_quality} Paper's "
        "Table 1 (its own oracle): random 10.310, MLE 9.038, SeqGAN 8.736.",
        "",
        f"**Speed** (CPU, {fast['threads']} thread(s); batch 64, {fast['rollouts']} roll-outs, "
        "median of repeats)",
        "",
        "| measure | value |",
        "| --- | --- |",
        f"| generation | {fast['generation_tokens_per_s']:,.0f} tokens/s |",
        f"| one adversarial G step (sample, roll-outs, update) | "
        f"{fast['adversarial_g_step_s']:.2f} s |",
        f"| roll-out rewards, per-prefix batches (used) | {fast['rollout_per_prefix_s']:.2f} s |",
        f"| roll-out rewards, all prefixes in one tensor | {fast['rollout_one_tensor_s']:.2f} s "
        f"({fast['one_tensor_over_per_prefix']:.2f}x) |",
        f"| roll-out rewards, naive loop (one roll-out at a time) | "
        f"{fast['rollout_naive_s']:.2f} s ({fast['naive_over_per_prefix']:.2f}x) |",
        f"| draw 1,024 tokens from 5,000: inverse CDF | {fast['inverse_cdf_ms']:.2f} ms |",
        f"| same with torch.multinomial | {fast['multinomial_ms']:.2f} ms "
        f"({fast['multinomial_over_inverse_cdf']:.1f}x) |",
        "",
        "Reproduce: `OMP_NUM_THREADS=1 python -m benchmarks seqgan`.",
    ]
    return "\n".join(lines)


def table(quick: bool = False, verbose: bool = True, write_cards: bool | None = None) -> dict:
    """The oracle table and the speed numbers; written into every SeqGAN card unless --quick."""
    began = time.time()
    published = FAMILY.model("seqgan-oracle")
    model, _ = hub.load(SeqGAN, published.repo_id, published.snapshot)
    n = 2000 if quick else 10000
    rows = oracle_table(model, n)
    checks = verdicts(rows)
    fast = speed(model, quick)
    text = markdown(rows, checks, fast, n)
    report_table(FAMILY, text, quick, verbose, write_cards)
    return {
        "seconds": round(time.time() - began, 1),
        "quick": quick,
        "table": rows,
        "verdicts": checks,
        "speed": fast,
        "markdown": text,
    }
