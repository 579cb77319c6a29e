"""The toy-shapes dataset: sample scenes, draw them, describe them in tables.

METHOD.md section 1. Every object has a distinct shape, colour and position within its
image; geometry is in unit coordinates with y pointing up, size 0.2, on white.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from vlmbinding.atomic import write_parquet
from vlmbinding.data.vocab import KINDS, POSITION_CENTRES, Vocabulary, color_rgb

log = logging.getLogger(__name__)

OBJECT_SIZE = 0.2
BOX_COLUMNS = ["x0", "y0", "x1", "y1"]
IMAGE_COLUMNS = ["image_id", "path", "num_objects"]
OBJECT_COLUMNS = ["image_id", "object", "shape", "color", "position", *BOX_COLUMNS]


def sample_scenes(
    vocab: Vocabulary, object_counts: list[int], images_per_count: int, seed: int
) -> pd.DataFrame:
    """Draw the objects of every image: one row per object (no geometry yet).

    For each count k, `images_per_count` images of k objects; within an image the shapes,
    colours and positions are sampled without replacement. Images are numbered in order of
    k, then draw; the seed fixes everything.
    """
    most = min(len(vocab.shapes), len(vocab.colors), len(vocab.positions))
    if max(object_counts) > most:
        raise ValueError(
            f"dataset.object_counts asks for {max(object_counts)} objects, but with distinct "
            f"shapes, colours and positions an image holds at most {most}"
        )
    rng = np.random.default_rng(seed)
    rows = []
    index = 0
    for k in object_counts:
        for _ in range(images_per_count):
            drawn = {kind: rng.permutation(len(vocab.values(kind)))[:k] for kind in KINDS}
            for obj in range(k):
                rows.append(
                    {
                        "image_id": f"img_{index:05d}",
                        "object": obj,
                        **{kind: vocab.values(kind)[drawn[kind][obj]] for kind in KINDS},
                    }
                )
            index += 1
    return pd.DataFrame(rows, columns=["image_id", "object", *KINDS])


def shape_outline(shape: str, centre: tuple[float, float]) -> list[tuple[float, float]] | None:
    """Vertices of a polygonal shape in unit coordinates (None for the circle)."""
    cx, cy = centre
    h = OBJECT_SIZE / 2
    if shape == "circle":
        return None
    if shape == "square":
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":  # base and height 0.2, apex up
        return [(cx - h, cy - h), (cx + h, cy - h), (cx, cy + h)]
    if shape == "diamond":
        return [(cx, cy - h), (cx + h, cy), (cx, cy + h), (cx - h, cy)]
    if shape in ("pentagon", "hexagon"):  # circumradius 0.1
        n, start = (5, -90.0) if shape == "pentagon" else (6, 0.0)  # vertex down / right
        return [
            (
                cx + h * math.cos(math.radians(start + 360 * i / n)),
                cy + h * math.sin(math.radians(start + 360 * i / n)),
            )
            for i in range(n)
        ]
    if shape == "star":  # five points, one up, inner radius 0.4 of the outer
        return [
            (
                cx + r * math.cos(math.radians(90 + 36 * i)),
                cy + r * math.sin(math.radians(90 + 36 * i)),
            )
            for i, r in ((i, h if i % 2 == 0 else 0.4 * h) for i in range(10))
        ]
    raise ValueError(f"unknown shape {shape!r}")


@dataclass(frozen=True)
class Canvas:
    """Pixel geometry of the images: unit coordinates (y up) to pixels (y down)."""

    width: int = 232
    height: int = 231

    def to_pixels(self, x: float, y: float, scale: int = 1) -> tuple[float, float]:
        return x * self.width * scale, (1.0 - y) * self.height * scale

    def box(self, shape: str, centre: tuple[float, float]) -> tuple[int, int, int, int]:
        """The object's box in pixels: x0, y0 inclusive, x1, y1 exclusive (slice bounds)."""
        outline = shape_outline(shape, centre)
        if outline is None:
            h = OBJECT_SIZE / 2
            outline = [(centre[0] - h, centre[1] - h), (centre[0] + h, centre[1] + h)]
        xs, ys = zip(*(self.to_pixels(x, y) for x, y in outline))
        return (
            max(0, math.floor(min(xs))),
            max(0, math.floor(min(ys))),
            min(self.width, math.ceil(max(xs))),
            min(self.height, math.ceil(max(ys))),
        )


def render_image(objects: pd.DataFrame, canvas: Canvas, supersample: int = 4) -> Image.Image:
    """Draw one image's objects on white.

    Drawn at `supersample` times the size and box-filtered down, which anti-aliases the
    edges while the inside of each shape keeps its exact colour.
    """
    s = supersample
    big = Image.new("RGB", (canvas.width * s, canvas.height * s), (255, 255, 255))
    draw = ImageDraw.Draw(big)
    for obj in objects.itertuples(index=False):
        fill = color_rgb(obj.color)
        centre = POSITION_CENTRES[obj.position]
        outline = shape_outline(obj.shape, centre)
        if outline is None:
            h = OBJECT_SIZE / 2
            (x0, y1), (x1, y0) = (
                canvas.to_pixels(centre[0] - h, centre[1] - h, s),
                canvas.to_pixels(centre[0] + h, centre[1] + h, s),
            )
            draw.ellipse([x0, y0, x1, y1], fill=fill)
        else:
            draw.polygon([canvas.to_pixels(x, y, s) for x, y in outline], fill=fill)
    if s == 1:
        return big
    return big.resize((canvas.width, canvas.height), Image.Resampling.BOX)


def add_boxes(objects: pd.DataFrame, canvas: Canvas) -> pd.DataFrame:
    """Objects table with each object's pixel box (x0, y0, x1, y1) added."""
    boxes = [
        canvas.box(shape, POSITION_CENTRES[position])
        for shape, position in zip(objects["shape"], objects["position"])
    ]
    out = objects.copy()
    out[BOX_COLUMNS] = pd.DataFrame(boxes, index=objects.index, columns=BOX_COLUMNS)
    return out


def images_table(objects: pd.DataFrame, image_dir: str) -> pd.DataFrame:
    """One row per image in first-appearance order: image_id, path, num_objects."""
    counts = objects.groupby("image_id", sort=False).size()
    return pd.DataFrame(
        {
            "image_id": counts.index.astype(str),
            "path": [str(Path(image_dir) / f"{i}.png") for i in counts.index],
            "num_objects": counts.to_numpy().astype("int64"),
        }
    )


def generate_dataset(
    image_dir: str | Path,
    vocab: Vocabulary,
    object_counts: list[int],
    images_per_count: int,
    seed: int,
    canvas: Canvas = Canvas(),
    supersample: int = 4,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample, draw and write the images (`<image_dir>/<id>.png`); return the tables.

    The tables' `path` column starts with `image_dir` as given, so a relative `image_dir`
    gives paths relative to the working directory (`results/dataset/images/<id>.png`).
    """
    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    objects = add_boxes(sample_scenes(vocab, object_counts, images_per_count, seed), canvas)
    images = images_table(objects, str(image_dir))
    for n, (image_id, group) in enumerate(objects.groupby("image_id", sort=False), 1):
        render_image(group, canvas, supersample).save(image_dir / f"{image_id}.png")
        if n % 100 == 0 or n == len(images):
            log.info(f"drew {n}/{len(images)} images")
    return images, objects[OBJECT_COLUMNS]


def write_table(df: pd.DataFrame, path: str | Path) -> None:
    """Parquet without the pandas index, byte-identical for identical frames."""
    write_parquet(df.reset_index(drop=True), path, compression="zstd")
