"""Training adapter for GANomaly and its autoencoder baseline, and their evaluation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from hub_models import anomalydata, imagedata
from hub_models.blocks import init_dcgan
from hub_models.ganomaly import Ganomaly, GanomalyConfig, knn_scores, score_images
from hub_models.metrics import at_threshold, auroc
from hub_models.objectives import discriminator_loss
from training.base import StepContext, Trainer

D_COLLAPSED = 1e-5  # the paper's code re-initialises D when its loss falls below this


class GanomalyTrainer(Trainer):
    family_name = "ganomaly"
    presets: dict[str, dict[str, Any]] = {  # noqa: RUF012
        # seconds: what the tests run
        "tiny": {"resolution": 16, "z_dim": 8, "width": 8, "steps": 4, "batch_size": 8},
        # what is published: 32x32, a few minutes per model on a 2-core CPU
        "demo": {"resolution": 32, "width": 16, "steps": 1000},
    }

    def prepare_data(self, config: GanomalyConfig, data_path: Path | None):
        data = anomalydata.load(
            config.dataset, config.anomaly, config.resolution, config.channels, data_path
        )
        if data.channels != config.channels:
            raise ValueError(f"the data has {data.channels} channels, the model {config.channels}")
        return data

    def optimizers(self, model: Ganomaly) -> dict[str, torch.optim.Optimizer]:
        c = model.config
        betas = (c.beta1, c.beta2)
        generator = [p for name, p in model.named_parameters() if not name.startswith("disc")]
        out = {"g": torch.optim.Adam(generator, lr=c.lr, betas=betas)}
        if c.kind == "ganomaly":
            out["d"] = torch.optim.Adam(model.discriminator.parameters(), lr=c.lr, betas=betas)
        return out

    def train_step(
        self, model: Ganomaly, optimizers, data: anomalydata.AnomalySet, ctx: StepContext
    ) -> dict[str, float]:
        c = model.config
        index = torch.randint(len(data.train), (c.batch_size,), generator=ctx.generator)
        x = data.train[index].to(ctx.device)
        z = model.encoder(x)
        x_hat = model.decoder(z)
        if c.kind == "autoencoder":
            loss = F.mse_loss(x_hat, x)
            ctx.update(optimizers["g"], loss)
            return {"recon": loss.item()}

        d = model.discriminator
        with torch.no_grad():
            real_features = d.trunk(x)
        adversarial = F.mse_loss(d.trunk(x_hat), real_features)  # feature matching
        contextual = F.l1_loss(x_hat, x)
        latent = F.mse_loss(model.encoder2(x_hat), z)
        loss_g = c.w_adv * adversarial + c.w_con * contextual + c.w_enc * latent
        ctx.update(optimizers["g"], loss_g)

        # max log D(x) + log(1 - D(G(E(x))))
        loss_d = discriminator_loss("minimax", d(x), d(x_hat.detach()))
        ctx.update(optimizers["d"], loss_d)
        if loss_d.item() < D_COLLAPSED:
            init_dcgan(d)
        return {
            "adv": adversarial.item(),
            "con": contextual.item(),
            "enc": latent.item(),
            "loss_d": loss_d.item(),
        }

    def finalize(self, model: Ganomaly, data: anomalydata.AnomalySet) -> None:
        """Calibrate on unseen normal images once the final (rounded) weights exist."""
        model.calibrate(data.calibration)

    def evaluate(self, model: Ganomaly, data: anomalydata.AnomalySet) -> dict[str, float]:
        return evaluate(model, data)

    def sample_image(self, model: Ganomaly, data: anomalydata.AnomalySet):
        return triptych(model, data)

    # Samples of an anomaly model: the scores of ``n`` test images drawn with ``seed``, as CSV,
    # or their triptych (image, reconstruction, residual) as PNG.
    def save_png(self, model: Ganomaly, data, n: int, seed: int, path: Path) -> None:
        triptych(model, data, test_pick(data, n, seed)).save(path)

    def save_csv(self, model: Ganomaly, data, n: int, seed: int, path: Path) -> None:
        pick = test_pick(data, n, seed)
        out = score_images(model, data.test[pick])
        rows = ["index,kind,anomalous,score,relative"]
        for i, s, r in zip(
            pick.tolist(), out["score"].tolist(), out["relative"].tolist(), strict=True
        ):
            rows.append(f"{i},{data.test_kinds[i]},{int(data.test_labels[i])},{s:.6g},{r:.4f}")
        path.write_text("\n".join(rows) + "\n")


def test_pick(data: anomalydata.AnomalySet, n: int, seed: int) -> torch.Tensor:
    return torch.randperm(len(data.test), generator=torch.Generator().manual_seed(seed))[:n]


def evaluate(model: Ganomaly, data: anomalydata.AnomalySet) -> dict[str, float]:
    """The card's metrics on the test set (see PROTOCOL), with the k-NN baseline beside."""
    scores = score_images(model, data.test)["score"]
    at_default = at_threshold(scores, data.test_labels, model.threshold)
    return {
        "auroc": auroc(scores, data.test_labels),
        "auroc_knn": auroc(knn_scores(data.train, data.test), data.test_labels),
        "false_alarm_rate": at_default["false_alarm_rate"],
        "detection_rate": at_default["recall"],
        "f1": at_default["f1"],
    }


def triptych(model: Ganomaly, data: anomalydata.AnomalySet, pick: torch.Tensor | None = None):
    """Test images (normal, then anomalous), their reconstructions and residuals, in rows."""
    if pick is None:
        normal = torch.nonzero(data.test_labels == 0).flatten()[:4]
        abnormal = torch.nonzero(data.test_labels == 1).flatten()
        pick = torch.cat([normal, abnormal[:: max(1, len(abnormal) // 4)][:4]])
    images = data.test[pick]
    out = score_images(model, images)
    residual = (out["residual"][:, None] * 2 - 1).clamp(-1, 1).expand_as(images)
    rows = torch.cat([images, out["reconstruction"].clamp(-1, 1), residual])
    return imagedata.grid(rows, columns=len(pick), scale=3)
