"""Training adapter for SeqGAN: MLE pre-training, D pre-training, then policy gradient.

One loop step is one unit of a phase (SeqGANConfig.phase): an MLE epoch over the training
sequences, a discriminator round (fresh negatives, ``d_epochs`` epochs over real and fake),
or an adversarial step (one generator batch rewarded by Monte-Carlo roll-outs, the roll-out
policy moved towards G, then ``adv_d_rounds`` discriminator rounds on fresh negatives, as the
paper interleaves them). The replay frames record the NLL curves the page draws.

The roll-out policy is a delayed copy of G kept beside the run, not in the bundle (the
published weights do not need it); checkpoints keep it, so a resumed run is the run it would
have been.
"""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from hub_models import imagedata
from hub_models.seqgan import (
    SeqData,
    SeqGAN,
    SeqGANConfig,
    generate,
    nll,
    oracle_data,
    policy_gradient_loss,
    rollout_rewards,
    sample,
    sample_texts,
    text_data,
    text_scores,
    update_rollout,
)
from training.base import StepContext, Trainer

CURVE_SAMPLES = 2000  # generator samples per point of the recorded NLL curves
EVAL_SAMPLES = 10000  # the paper's protocol for the oracle NLL
TEXT_SAMPLES = 500  # samples scored by novelty and BLEU


def _seed(ctx: StepContext) -> int:
    return int(torch.randint(2**31 - 1, (1,), generator=ctx.generator))


class SeqGANTrainer(Trainer):
    family_name = "seqgan"
    presets: dict[str, dict[str, Any]] = {  # noqa: RUF012
        # seconds: what the tests run
        "tiny": {
            "vocab_size": 40,
            "seq_len": 6,
            "emb_dim": 8,
            "hidden_dim": 8,
            "d_emb_dim": 8,
            "d_widths": (1, 2, 3),
            "d_counts": (4, 4, 4),
            "n_train": 64,
            "n_held_out": 32,
            "batch_size": 16,
            "mle_epochs": 2,
            "d_pretrain_rounds": 1,
            "d_samples": 32,
            "d_epochs": 1,
            "adv_steps": 2,
            "rollouts": 2,
            "adv_d_samples": 32,
        },
        # what is published for the oracle: the paper's sizes, a reduced schedule (minutes)
        "demo": {},
        # a user's text file (--data): one line per sequence, character level
        "text": {
            "corpus": "text",
            "level": "char",
            "vocab_size": 200,
            "seq_len": 41,
            "max_chars": 40,
            "hidden_dim": 128,
            "d_emb_dim": 32,
            "mle_epochs": 20,
            "adv_steps": 20,
            "rollouts": 8,
        },
    }

    def prepare_data(self, config: SeqGANConfig, data_path: Path | None) -> SeqData:
        if config.corpus == "oracle":
            if data_path is not None:
                raise ValueError(
                    "the oracle experiment makes its own data: to train on your text file, "
                    "add --preset text (or --corpus=NAME --level=char)"
                )
            return oracle_data(config)
        return text_data(config, data_path)

    def build(self, config: SeqGANConfig, data: SeqData) -> SeqGAN:
        if data.vocab and not config.tokens:  # a text model stores its vocabulary
            config = dataclasses.replace(config, tokens=data.vocab, vocab_size=len(data.vocab))
        return SeqGAN(config)

    def optimizers(self, model: SeqGAN) -> dict[str, torch.optim.Optimizer]:
        c = model.config
        g = list(model.generator.parameters())
        d = list(model.discriminator.parameters())
        optimizers = {
            "mle": torch.optim.Adam(g, lr=c.lr_mle),
            "adv": torch.optim.Adam(g, lr=c.lr_adv),
            "d": torch.optim.Adam(d, lr=c.lr_d),
        }

        def clip(*_) -> None:  # the authors clip G's gradient norm at 5
            torch.nn.utils.clip_grad_norm_(g, c.grad_clip)

        for name in ("mle", "adv"):
            optimizers[name].register_step_pre_hook(clip)
        return optimizers

    def train_step(
        self, model: SeqGAN, optimizers, data: SeqData, ctx: StepContext
    ) -> dict[str, float]:
        c = model.config
        phase = c.phase(ctx.step)
        if phase == "mle":
            loss = self.mle_epoch(model, optimizers["mle"], data, ctx)
            # The MLE-only twin is whatever G is when MLE ends.
            model.mle_generator.load_state_dict(model.generator.state_dict())
            return {"mle_nll": loss}
        if phase == "d_pretrain":
            return {
                "loss_d": self.d_round(model, optimizers["d"], data, ctx, c.d_samples, c.d_epochs)
            }
        return self.adversarial_step(model, optimizers, data, ctx)

    def mle_epoch(self, model: SeqGAN, optimizer, data: SeqData, ctx: StepContext) -> float:
        """# maximise log G(y_1..y_T) = sum_t log G(y_t | y_<t) over the training sequences"""
        c = model.config
        order = torch.randperm(len(data.train), generator=ctx.generator)
        total, batches = 0.0, 0
        for start in range(0, len(order), c.batch_size):
            batch = data.train[order[start : start + c.batch_size]].to(ctx.device)
            logits = model.generator(batch)
            loss = F.cross_entropy(logits.transpose(1, 2), batch)
            ctx.update(optimizer, loss)
            total, batches = total + loss.item(), batches + 1
        return total / batches

    def d_round(
        self, model: SeqGAN, optimizer, data: SeqData, ctx: StepContext, n: int, epochs: int
    ) -> float:
        """# maximise log D(real) + log(1 - D(G(z))), on fresh negatives and as many positives"""
        c = model.config
        n = min(n, len(data.train))
        model.generator.eval()
        fake = generate(model.generator, n, c.seq_len, _seed(ctx))
        model.generator.train()
        real = data.train[torch.randperm(len(data.train), generator=ctx.generator)[:n]]
        x = torch.cat([real, fake])
        y = torch.cat([torch.ones(n), torch.zeros(n)])  # 1 = real
        total, batches = 0.0, 0
        for _ in range(epochs):
            order = torch.randperm(len(x), generator=ctx.generator)
            for start in range(0, len(x), c.batch_size):
                index = order[start : start + c.batch_size]
                logits = model.discriminator(x[index].to(ctx.device))
                # The minimax D loss per example: real and fake are shuffled into one batch,
                # as the paper's code trains D.
                loss = F.binary_cross_entropy_with_logits(logits, y[index].to(ctx.device))
                ctx.update(optimizer, loss)
                total, batches = total + loss.item(), batches + 1
        return total / batches

    def adversarial_step(
        self, model: SeqGAN, optimizers, data: SeqData, ctx: StepContext
    ) -> dict[str, float]:
        c = model.config
        if data.rollout is None:
            data.rollout = copy.deepcopy(model.generator).eval().requires_grad_(False)
        # (1) Update G: maximise E[sum_t Q(y_<t, y_t) log G(y_t | y_<t)] (REINFORCE)
        model.generator.eval()
        tokens = generate(model.generator, c.batch_size, c.seq_len, _seed(ctx)).to(ctx.device)
        model.generator.train()
        rewards = rollout_rewards(
            data.rollout, model.discriminator, tokens, c.rollouts, ctx.generator
        )
        advantages = rewards - rewards.mean(0) if c.reward_baseline else rewards
        loss_g = policy_gradient_loss(model.generator, tokens, advantages)
        ctx.update(optimizers["adv"], loss_g)
        update_rollout(data.rollout, model.generator, c.rollout_update)
        # (2) Update D on fresh negatives of the new G
        loss_d = 0.0
        for _ in range(c.adv_d_rounds):
            loss_d = self.d_round(
                model, optimizers["d"], data, ctx, c.adv_d_samples, c.adv_d_epochs
            )
        return {"loss_g": loss_g.item(), "reward": rewards.mean().item(), "loss_d": loss_d}

    def record(self, model: SeqGAN, data: SeqData) -> dict[str, torch.Tensor]:
        """One point of the NLL curves (CURVE_SAMPLES samples, seed 0)."""
        text = data.oracle is None
        held_out = data.held_out[:CURVE_SAMPLES]
        frame = {"held_out_nll": torch.tensor(nll(model.generator, held_out, text=text))}
        if data.oracle is not None:
            fake = generate(model.generator, CURVE_SAMPLES, model.config.seq_len, 0)
            frame["oracle_nll"] = torch.tensor(nll(data.oracle, fake))
        return frame

    def evaluate(self, model: SeqGAN, data: SeqData) -> dict[str, float]:
        return evaluate_seqgan(model, data)

    def sample_image(self, model: SeqGAN, data: SeqData) -> Image.Image:
        return render_lines(sample_texts(model, 8, 0))

    def save_txt(self, model: SeqGAN, data: SeqData, n: int, seed: int, path: Path) -> None:
        path.write_text("\n".join(sample_texts(model, n, seed)) + "\n", encoding="utf-8")

    save_csv = save_txt  # one sample per line

    def state(self, model: SeqGAN, data: SeqData) -> dict[str, torch.Tensor]:
        if data.rollout is None:
            return {}
        return {f"rollout.{k}": v for k, v in data.rollout.state_dict().items()}

    def load_state(self, model: SeqGAN, data: SeqData, state: dict[str, torch.Tensor]) -> None:
        rollout = {k[len("rollout.") :]: v for k, v in state.items() if k.startswith("rollout.")}
        if rollout:
            data.rollout = copy.deepcopy(model.generator).eval().requires_grad_(False)
            data.rollout.load_state_dict(rollout, strict=True)


def render_lines(lines: list[str], columns: int = 32, size: int = 22) -> Image.Image:
    """The card's picture of text samples, large enough to read in a home-page card (long
    lines are cut at ``columns`` characters). Characters outside Latin scripts are shown as
    U+XXXX: the only font on these machines (DejaVu) has no CJK glyphs."""
    shown = []
    for line in lines:
        text = "".join(ch if ord(ch) < 0x250 else f"[U+{ord(ch):04X}]" for ch in line)
        shown.append(text if len(text) <= columns else text[: columns - 1] + "…")
    font = imagedata.text_font(size, mono=True)
    step = round(size * 1.45)
    width = round(size * 0.62 * columns) + 24
    image = Image.new("RGB", (width, step * len(shown) + 20), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(shown):
        draw.text((12, 10 + step * i), line, fill=(20, 20, 20), font=font)
    return image


def evaluate_seqgan(model: SeqGAN, data: SeqData) -> dict[str, float]:
    """The card's metrics (PROTOCOL): oracle NLL and held-out NLL, or novelty and BLEU."""
    c = model.config
    metrics: dict[str, float] = {}
    if data.oracle is not None:
        for prefix, which in (("", "seqgan"), ("mle_", "mle")):
            fake = sample(model, EVAL_SAMPLES, 0, which=which)
            metrics[f"{prefix}oracle_nll"] = nll(data.oracle, fake)
            metrics[f"{prefix}held_out_nll"] = nll(model.policy(which), data.held_out)
        metrics["oracle_entropy"] = nll(data.oracle, data.held_out)
        return metrics
    for prefix, which in (("", "seqgan"), ("mle_", "mle")):
        metrics[f"{prefix}held_out_nll"] = nll(model.policy(which), data.held_out, text=True)
        scores = text_scores(sample_texts(model, TEXT_SAMPLES, 0, which), data, c.level)
        metrics.update({f"{prefix}{key}": value for key, value in scores.items()})
    return metrics
