"""The toy-shapes vocabulary: shapes, colours, positions and the features they make.

METHOD.md section 1. A feature is a shape, a colour or a position; an image "has" a
feature when any of its objects has that shape, colour or position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib.colors import CSS4_COLORS, to_rgb

SHAPES = ("circle", "square", "triangle", "pentagon", "hexagon")
COLORS = ("red", "green", "blue", "yellow", "pink", "black")
POSITIONS = ("M", "TL", "TR", "BL", "BR")

# Object centres in unit coordinates, y pointing up (METHOD.md section 1). T, B, L, R are
# extra positions a user may add; every pair of centres is at least 0.25 apart along an
# axis, so objects of size 0.2 never overlap.
POSITION_CENTRES = {
    "M": (0.5, 0.5),
    "TL": (0.25, 0.75),
    "TR": (0.75, 0.75),
    "BL": (0.25, 0.25),
    "BR": (0.75, 0.25),
    "T": (0.5, 0.75),
    "B": (0.5, 0.25),
    "L": (0.25, 0.5),
    "R": (0.75, 0.5),
}

# Words used in captions and prompts for each position.
POSITION_WORDS = {
    "M": "in the middle",
    "TL": "at the top left",
    "TR": "at the top right",
    "BL": "at the bottom left",
    "BR": "at the bottom right",
    "T": "at the top",
    "B": "at the bottom",
    "L": "on the left",
    "R": "on the right",
}

KNOWN_SHAPES = (
    "circle",
    "square",
    "triangle",
    "pentagon",
    "hexagon",
    "diamond",
    "star",
)
KNOWN_COLORS = tuple(sorted(CSS4_COLORS))
KNOWN_POSITIONS = tuple(POSITION_CENTRES)

KINDS = ("shape", "color", "position")


def color_rgb(name: str) -> tuple[int, int, int]:
    """The 8-bit RGB of a CSS/matplotlib colour name (green is (0, 128, 0))."""
    return tuple(int(round(255 * c)) for c in to_rgb(CSS4_COLORS[name]))


@dataclass(frozen=True)
class Vocabulary:
    """The attribute values of a dataset, in a fixed order that defines the features."""

    shapes: tuple[str, ...] = SHAPES
    colors: tuple[str, ...] = COLORS
    positions: tuple[str, ...] = POSITIONS

    def __post_init__(self):
        for kind, values, known in (
            ("shapes", self.shapes, KNOWN_SHAPES),
            ("colors", self.colors, KNOWN_COLORS),
            ("positions", self.positions, KNOWN_POSITIONS),
        ):
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ValueError(f"unknown {kind} {unknown}; known {kind}: {list(known)}")
            if len(set(values)) != len(values):
                raise ValueError(f"{kind} has repeated values: {list(values)}")
        s, c, p = set(self.shapes), set(self.colors), set(self.positions)
        clash = (s & c) | (s & p) | (c & p)
        if clash:
            raise ValueError(f"feature names must be unique across kinds, repeated: {clash}")

    @classmethod
    def from_config(cls, cfg: dict) -> Vocabulary:
        """Build from the `dataset` config block (keys shapes, colors, positions)."""
        return cls(
            tuple(cfg.get("shapes", SHAPES)),
            tuple(cfg.get("colors", COLORS)),
            tuple(cfg.get("positions", POSITIONS)),
        )

    @property
    def features(self) -> list[str]:
        """All features: shapes, then colours, then positions (16 for the paper)."""
        return [*self.shapes, *self.colors, *self.positions]

    @property
    def feature_kinds(self) -> dict[str, str]:
        """Feature name -> 'shape' | 'color' | 'position'."""
        kinds = {s: "shape" for s in self.shapes}
        kinds.update({c: "color" for c in self.colors})
        kinds.update({p: "position" for p in self.positions})
        return kinds

    def values(self, kind: str) -> tuple[str, ...]:
        return {"shape": self.shapes, "color": self.colors, "position": self.positions}[kind]

    def feature_pairs(self) -> list[tuple[str, str]]:
        """Every unordered pair of features, in feature order (120 for 16 features)."""
        return all_pairs(self.features)


def all_pairs(features: list[str]) -> list[tuple[str, str]]:
    """Every unordered pair of `features`, in feature order."""
    return [(a, b) for i, a in enumerate(features) for b in features[i + 1 :]]


def presence_matrix(objects: pd.DataFrame, image_ids: list[str], vocab: Vocabulary) -> np.ndarray:
    """Boolean [image, feature]: does any object of the image have that feature.

    Rows follow `image_ids`, columns `vocab.features` (METHOD.md section 1).
    """
    row = {image_id: i for i, image_id in enumerate(image_ids)}
    col = {f: j for j, f in enumerate(vocab.features)}
    present = np.zeros((len(image_ids), len(col)), dtype=bool)
    for kind in KINDS:
        rows = objects["image_id"].map(row).to_numpy()
        cols = objects[kind].map(col).to_numpy()
        keep = ~(pd.isna(rows) | pd.isna(cols))
        present[rows[keep].astype(int), cols[keep].astype(int)] = True
    return present
