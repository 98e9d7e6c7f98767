"""Metrics every family reports, in one home.

- Image distributions, in any feature space: Fréchet distance (FID's formula), KID,
  precision/recall (Kynkäänniemi et al. 2019), density/coverage (Naeem et al. 2020), nearest
  neighbours for the copy check, and the pixel-space Gaussian baseline.
- Anomaly scores: AUROC (Mann-Whitney), the ROC curve, rates at a threshold.
- Text: BLEU and self-BLEU (Texygen's protocol), novelty.

The feature nets the image metrics run in are hub_models/features.py.
"""

from __future__ import annotations

import math
from collections import Counter

import torch

# -- image distributions --------------------------------------------------------------------


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """FID between two feature sets: |mu_a - mu_b|^2 + Tr(Sa + Sb - 2 (Sa Sb)^1/2).

    Tr((Sa Sb)^1/2) is the sum of square roots of the eigenvalues of Sa^1/2 Sb Sa^1/2, which is
    symmetric: computed with two eigh calls in float64 instead of a general matrix sqrt.
    """
    if min(len(a), len(b)) < 2:
        return math.nan
    a, b = a.double(), b.double()
    mu = a.mean(0) - b.mean(0)
    sa, sb = torch.cov(a.T), torch.cov(b.T)
    va, ua = _eigh(sa)
    root_a = (ua * va.clamp_min(0).sqrt()) @ ua.T
    middle = _eigh(root_a @ sb @ root_a)[0].clamp_min(0).sqrt().sum()
    return float(mu @ mu + sa.trace() + sb.trace() - 2 * middle)


def _eigh(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """eigh of a symmetric PSD matrix; LAPACK can fail to converge on a near-singular one (a
    few nearly identical samples in many dimensions), so retry with a tiny ridge on the
    diagonal, as FID implementations offset a singular covariance (the ridge is 1e-10 of the
    mean eigenvalue, far below anything the distance can show)."""
    matrix = (matrix + matrix.T) / 2
    try:
        return torch.linalg.eigh(matrix)
    except torch.linalg.LinAlgError:
        ridge = 1e-10 * float(matrix.trace().abs()) / len(matrix) + 1e-30
        return torch.linalg.eigh(matrix + ridge * torch.eye(len(matrix), dtype=matrix.dtype))


def kernel_inception_distance(
    a: torch.Tensor, b: torch.Tensor, subsets: int = 10, subset_size: int = 400, seed: int = 0
) -> float:
    """KID: unbiased MMD^2 with the kernel (x.y / d + 1)^3, averaged over random subsets."""
    a, b = a.double(), b.double()
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    if m < 2:
        return math.nan
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=g)[:m]]
        y = b[torch.randperm(len(b), generator=g)[:m]]
        kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
        off = m * (m - 1)
        total += float(
            (kxx.sum() - kxx.diagonal().sum()) / off
            + (kyy.sum() - kyy.diagonal().sum()) / off
            - 2 * kxy.mean()
        )
    return total / subsets


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 5) -> dict[str, float]:
    """Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al.
    2020) with k-nearest-neighbour balls."""
    real, fake = real.double(), fake.double()
    k = min(k, len(real) - 1, len(fake) - 1)  # a small user set: fewer neighbours
    if k < 1:
        return dict.fromkeys(("precision", "recall", "density", "coverage"), math.nan)

    def kth_radius(x: torch.Tensor) -> torch.Tensor:
        dist = torch.cdist(x, x)
        return dist.kthvalue(k + 1, dim=1).values  # +1: the point itself is at distance 0

    r_real, r_fake = kth_radius(real), kth_radius(fake)
    d_rf = torch.cdist(real, fake)  # (real, fake)
    inside_real = d_rf <= r_real[:, None]
    precision = inside_real.any(0).double().mean()
    recall = (d_rf <= r_fake[None, :]).any(1).double().mean()
    density = inside_real.double().sum(0).mean() / k
    coverage = (d_rf.min(1).values <= r_real).double().mean()
    return {
        "precision": float(precision),
        "recall": float(recall),
        "density": float(density),
        "coverage": float(coverage),
    }


def nearest(
    queries: torch.Tensor, bank: torch.Tensor, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances and indices of each query's k nearest rows of ``bank`` (L2)."""
    dist = torch.cdist(queries.double(), bank.double())
    values, indices = dist.topk(k, dim=1, largest=False)
    return values.float(), indices


def image_metrics(
    fake: torch.Tensor,
    train_features: torch.Tensor,
    held_out_features: torch.Tensor,
    reference_index: torch.Tensor,
) -> dict[str, float]:
    """Every unconditional metric for one feature set against the training split."""
    reference = train_features[reference_index]
    near_fake = nearest(fake, train_features)[0].median()
    near_real = nearest(held_out_features, train_features)[0].median()
    return {
        "fid": frechet_distance(fake, train_features),
        "kid": 1000 * kernel_inception_distance(fake, train_features),
        **prdc(reference, fake),
        "nn_ratio": float(near_fake / near_real),
    }


COPY_RMS = 0.02  # a sample within 2 % RMS of a training image counts as a copy


def copies(images: torch.Tensor, train: torch.Tensor) -> float:
    """Share of images within COPY_RMS (root-mean-square, [0, 1] pixel units) of a train image."""
    flat_train = (train.flatten(1) + 1) / 2
    flat = (images.flatten(1) + 1) / 2
    rms = torch.cdist(flat.double(), flat_train.double()).min(1).values / flat.shape[1] ** 0.5
    return float((rms < COPY_RMS).float().mean())


def pixel_gaussian(train: torch.Tensor, n: int, seed: int, rank: int = 64) -> torch.Tensor:
    """The pixel-space baseline: samples of a Gaussian fitted to the training images
    (mean plus the top ``rank`` principal components, the rest as isotropic noise)."""
    x = train.flatten(1).double()
    mean = x.mean(0)
    _, s, v = torch.linalg.svd(x - mean, full_matrices=False)
    scale = s[:rank] / math.sqrt(len(x) - 1)
    rest = (s[rank:] ** 2).sum() / (len(x) - 1) / max(x.shape[1] - rank, 1)
    g = torch.Generator().manual_seed(seed)
    codes = torch.randn(n, rank, generator=g, dtype=torch.float64)
    noise = torch.randn(n, x.shape[1], generator=g, dtype=torch.float64) * rest.sqrt()
    out = mean + (codes * scale) @ v[:rank] + noise
    return out.float().clamp(-1, 1).reshape(n, *train.shape[1:])


# -- anomaly scores ------------------------------------------------------------------------


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve: the probability that a random anomalous image scores above a
    random normal one, ties counting one half (the Mann-Whitney U statistic)."""
    scores, labels = scores.double().flatten(), labels.flatten().bool()
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        raise ValueError("AUROC needs both normal and anomalous images")
    order = scores.argsort()
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    # Average the ranks of tied scores.
    unique, inverse, counts = torch.unique(sorted_scores, return_inverse=True, return_counts=True)
    sums = torch.zeros(len(unique), dtype=torch.float64).index_add_(
        0, inverse, torch.arange(1, len(scores) + 1, dtype=torch.float64)
    )
    ranks[order] = (sums / counts)[inverse]
    u = ranks[labels].sum() - pos * (pos + 1) / 2
    return float(u / (pos * neg))


def roc_curve(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """False- and true-positive rates at every distinct threshold, from strictest to loosest
    (an image is flagged when its score is >= the threshold)."""
    scores, labels = scores.double().flatten(), labels.flatten().double()
    order = scores.argsort(descending=True)
    s, y = scores[order], labels[order]
    tp, fp = y.cumsum(0), (1 - y).cumsum(0)
    last = torch.ones_like(s, dtype=torch.bool)
    last[:-1] = s[1:] != s[:-1]  # keep the last of each run of ties
    zero = torch.zeros(1, dtype=torch.float64)
    return {
        "fpr": torch.cat([zero, fp[last] / max(1.0, float(fp[-1]))]),
        "tpr": torch.cat([zero, tp[last] / max(1.0, float(tp[-1]))]),
        "threshold": torch.cat([torch.tensor([float("inf")], dtype=torch.float64), s[last]]),
    }


def at_threshold(scores: torch.Tensor, labels: torch.Tensor, threshold: float) -> dict:
    """Precision, recall (detection rate), F1 and false-alarm rate when flagging score >= t."""
    flagged, labels = scores >= threshold, labels.bool()
    tp = int((flagged & labels).sum())
    fp = int((flagged & ~labels).sum())
    fn = int((~flagged & labels).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    negatives = int((~labels).sum())
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_alarm_rate": fp / negatives if negatives else 0.0,
    }


# -- text ---------------------------------------------------------------------------------


def _ngrams(tokens: list, n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


class NgramReference:
    """The references of BLEU, read once: per n-gram the two largest counts in any reference
    and which reference holds the largest, so that self-BLEU can leave each sample out."""

    def __init__(self, references: list[list], max_n: int = 4) -> None:
        self.max_n = max_n
        self.best: dict[tuple, tuple[int, int, int]] = {}
        for index, ref in enumerate(references):
            for n in range(1, max_n + 1):
                for gram, count in _ngrams(ref, n).items():
                    first, owner, second = self.best.get(gram, (0, -1, 0))
                    if count > first:
                        self.best[gram] = (count, index, first)
                    elif count > second:
                        self.best[gram] = (first, owner, count)
        self.lengths = sorted({len(r) for r in references})

    def clip(self, gram: tuple, exclude: int) -> int:
        first, owner, second = self.best.get(gram, (0, -1, 0))
        return second if owner == exclude else first

    def bleu(self, hypothesis: list, exclude: int = -1) -> float:
        """Sentence BLEU-max_n with uniform weights and +1 smoothing of the n > 1 precisions."""
        if not hypothesis:
            return 0.0
        log_precision = 0.0
        for n in range(1, self.max_n + 1):
            grams = _ngrams(hypothesis, n)
            total = sum(grams.values())
            matched = sum(min(c, self.clip(g, exclude)) for g, c in grams.items())
            if n == 1:
                if matched == 0:
                    return 0.0
                p = matched / total
            else:
                p = (matched + 1) / (total + 1)
            log_precision += math.log(p) / self.max_n
        closest = min(self.lengths, key=lambda r: (abs(r - len(hypothesis)), r))
        brevity = 1.0 if len(hypothesis) > closest else math.exp(1 - closest / len(hypothesis))
        return brevity * math.exp(log_precision)


def bleu(hypotheses: list[list], references: list[list], max_n: int = 4) -> float:
    """Mean sentence BLEU of the hypotheses against all references (Texygen's protocol)."""
    ref = NgramReference(references, max_n)
    return sum(ref.bleu(h) for h in hypotheses) / max(len(hypotheses), 1)


def self_bleu(hypotheses: list[list], max_n: int = 4) -> float:
    """Mean BLEU of each hypothesis against all the others: high means samples repeat."""
    ref = NgramReference(hypotheses, max_n)
    return sum(ref.bleu(h, exclude=i) for i, h in enumerate(hypotheses)) / max(len(hypotheses), 1)


def novelty(texts: list[str], training: set[str]) -> float:
    """Share of texts not in the training set."""
    return sum(t not in training for t in texts) / max(len(texts), 1)
