"""Training adapter for the 2D lab: presets, data, and the step on the shared loop."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from hub_models import toy2d
from hub_models.toy2d import parse_points_csv
from training.base import StepContext, Trainer

REPLAY_POINTS = 256  # generated points stored per replay frame
REPLAY_FIELD = 40  # discriminator heatmap resolution per replay frame
REPLAY_MANIFOLD = 12  # latent grid lines per replay frame


def load_points_csv(path: Path) -> np.ndarray:
    """Read an (N, 2) point cloud from a CSV with two numeric columns (a header is allowed)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path} is not a file; --data for toy2d takes a CSV of x,y points")
    return parse_points_csv(path.read_bytes(), path.name)


def render_points(
    points: np.ndarray, extent, size: int = 256, reference: np.ndarray | None = None
) -> Image.Image:
    """A small scatter plot as an image (generated in orange over real in grey)."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    xmin, xmax, ymin, ymax = extent

    def to_pixels(pts: np.ndarray) -> np.ndarray:
        px = (pts[:, 0] - xmin) / (xmax - xmin) * (size - 1)
        py = (1 - (pts[:, 1] - ymin) / (ymax - ymin)) * (size - 1)
        return np.stack([px, py], 1)

    for layer, colour in ((reference, (170, 170, 170)), (points, (230, 110, 20))):
        if layer is None:
            continue
        for x, y in to_pixels(np.asarray(layer)):
            draw.ellipse((x - 1.2, y - 1.2, x + 1.2, y + 1.2), fill=colour)
    return image


class Toy2DTrainer(Trainer):
    family_name = "toy2d"
    presets: dict[str, dict[str, Any]] = {  # noqa: RUF012
        # seconds: what the tests run
        "tiny": {
            "steps": 60,
            "batch_size": 64,
            "g_width": 32,
            "d_width": 32,
            "g_depth": 2,
            "d_depth": 2,
        },
        # what is published: minutes on a 2-core CPU per model
        "demo": {"steps": 20000, "batch_size": 256, "lr_final_fraction": 0.02},
    }

    def prepare_data(self, config: toy2d.Toy2DConfig, data_path: Path | None) -> toy2d.Target:
        if data_path is not None:
            return toy2d.point_cloud(Path(data_path).stem, load_points_csv(data_path))
        return toy2d.builtin_target(config.target)

    def optimizers(self, model: toy2d.Toy2DGAN) -> dict[str, torch.optim.Optimizer]:
        return toy2d.make_optimizers(model)

    def train_step(
        self, model: toy2d.Toy2DGAN, optimizers, data: toy2d.Target, ctx: StepContext
    ) -> dict[str, float]:
        fraction = toy2d.lr_fraction(model.config, ctx.step)
        toy2d.set_lr_fraction(model, optimizers, fraction)
        return toy2d.train_step(model, optimizers, data, ctx.generator, ctx.update)

    def record(self, model: toy2d.Toy2DGAN, data: toy2d.Target) -> dict[str, torch.Tensor]:
        """One replay frame: what the lab page draws, stored small (float16).

        ``metrics`` holds the values of ``toy2d.evaluate`` in its order (mode metrics for a
        mixture, the energy distance for a point cloud).
        """
        drawn = toy2d.frame(model, data, REPLAY_POINTS, REPLAY_FIELD, REPLAY_MANIFOLD)
        metrics = toy2d.evaluate(model, data, n=2500, seed=0)
        return {key: value.half() for key, value in drawn.items()} | {
            "metrics": torch.tensor(list(metrics.values()), dtype=torch.float32)
        }

    def evaluate(self, model: toy2d.Toy2DGAN, data: toy2d.Target) -> dict[str, float]:
        return toy2d.evaluate(model, data, n=2500, seed=0)

    def sample_image(self, model: toy2d.Toy2DGAN, data: toy2d.Target) -> Image.Image:
        points = toy2d.sample(model, 1000, seed=0).numpy()
        real = data.sample(1000, torch.Generator().manual_seed(0)).numpy()
        return render_points(points, data.extent(), reference=real)

    def save_png(self, model: toy2d.Toy2DGAN, data: toy2d.Target, n: int, seed: int, path):
        render_points(toy2d.sample(model, n, seed).numpy(), data.extent(), size=512).save(path)

    def save_csv(self, model: toy2d.Toy2DGAN, data: toy2d.Target, n: int, seed: int, path):
        points = toy2d.sample(model, n, seed).numpy()
        np.savetxt(path, points, delimiter=",", header="x,y", comments="", fmt="%.6f")
