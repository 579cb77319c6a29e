"""Bringing your own dataset: read, check and import a user's images and objects table.

Every defect is found at start-up (common.smk's `_check_external`) and named with its file
and the fix, before any job runs: a missing or unreadable table, missing columns, unknown
feature values, images that are missing, not images, or listed twice, and objects that
the model's centre crop would cut away. The import then writes plain RGB PNGs (transparency
composited onto white) and the workflow's tables.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

from vlmbinding.data.crop import boxes_outside, seen_region, to_rgb
from vlmbinding.data.toyshapes import BOX_COLUMNS, OBJECT_COLUMNS, Canvas, images_table
from vlmbinding.data.vocab import KINDS, POSITION_CENTRES, Vocabulary

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
REQUIRED_COLUMNS = ["image_id", *KINDS]
SHOW = 10  # ids named per problem


class DatasetError(ValueError):
    """An external dataset that does not match the expected layout."""


def _some(ids) -> str:
    ids = list(ids)
    more = f" and {len(ids) - SHOW} more" if len(ids) > SHOW else ""
    return f"{ids[:SHOW]}{more}"


def read_objects_table(path: str | Path) -> pd.DataFrame:
    """The objects table (.parquet, .csv or .tsv), or a DatasetError naming the file."""
    path = Path(path)
    where = f"dataset.external.objects: {path}"
    if not path.is_file():
        raise DatasetError(f"{where} does not exist; set the key to your objects table")
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        elif path.suffix in (".csv", ".tsv"):
            table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
        else:
            raise DatasetError(f"{where}: use a .parquet, .csv or .tsv file")
    except pd.errors.EmptyDataError:
        raise DatasetError(
            f"{where} is empty; it needs a header ({', '.join(REQUIRED_COLUMNS)}) and one "
            "row per object"
        ) from None
    except DatasetError:
        raise
    except Exception as e:  # pandas and pyarrow raise many kinds for a garbled file
        raise DatasetError(f"{where} cannot be read ({type(e).__name__}: {e})") from None
    if table.empty:
        raise DatasetError(
            f"{where} has a header but no rows; add one row per object "
            f"({', '.join(REQUIRED_COLUMNS)})"
        )
    return table


def image_files(image_dir: str | Path) -> dict[str, list[Path]]:
    """image_id (file stem) -> the image files with that stem in `image_dir`."""
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise DatasetError(
            f"dataset.external.images: image folder {image_dir} does not exist; set the key "
            "to the folder that holds <image_id>.png|jpg files"
        )
    files: dict[str, list[Path]] = {}
    for f in sorted(image_dir.iterdir()):
        if f.suffix.lower() in IMAGE_SUFFIXES:
            files.setdefault(f.stem, []).append(f)
    return files


def inspect_image(path: Path) -> tuple[str, int, int]:
    """(mode, width, height) of an image file; a DatasetError if it is not a whole image."""
    try:
        with Image.open(path) as im:
            mode, (width, height) = im.mode, im.size
            im.verify()  # reads the file through: a truncated or garbled one fails here
    except Image.DecompressionBombError:
        raise DatasetError(too_large(path)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(
            f"{path} is not a readable image ({type(e).__name__}: {e}); is it a text file or "
            "an interrupted download? Replace it with the image or remove its rows"
        ) from None
    return mode, width, height


def too_large(path: Path) -> str:
    """Why PIL refuses `path`: its size against PIL's decompression-bomb limit."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None  # only to read the header's size; restored below
    try:
        with Image.open(path) as im:
            width, height = im.size
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return (
        f"{path} is {width} x {height} = {width * height:,} pixels, more than twice PIL's "
        f"limit of {limit:,} (PIL.Image.MAX_IMAGE_PIXELS, its guard against decompression "
        "bombs), so PIL refuses to open it. The model sees every image at a few hundred "
        "pixels a side: downscale it, e.g. `mogrify -resize '4096x4096>' <file>` "
        "(ImageMagick), and run again"
    )


def inspect_images(files: dict[str, Path]) -> pd.DataFrame:
    """image_id, path, mode, width, height of every image; all unreadable ones named at once."""
    rows, bad = [], []
    for image_id, path in files.items():
        try:
            rows.append((image_id, str(path), *inspect_image(path)))
        except DatasetError as e:
            bad.append(str(e))
    if bad:
        raise DatasetError(f"{len(bad)} image file(s) cannot be read: " + "; ".join(bad[:SHOW]))
    return pd.DataFrame(rows, columns=["image_id", "path", "mode", "width", "height"])


def object_boxes(objects: pd.DataFrame, sizes: pd.DataFrame) -> pd.DataFrame:
    """x0, y0, x1, y1 of every object: from the table, else the nominal geometry of its
    position (METHOD.md section 1) at its image's size. Index follows `objects`."""
    given = [c for c in BOX_COLUMNS if c in objects.columns]
    if given and len(given) < len(BOX_COLUMNS):
        raise DatasetError(
            f"dataset.external.objects has box columns {given} but not all of {BOX_COLUMNS}; "
            "give all four or none (then boxes come from the nominal geometry)"
        )
    if given:
        boxes = objects[BOX_COLUMNS]
        if boxes.isna().any().any() or not all(map(pd.api.types.is_numeric_dtype, boxes.dtypes)):
            raise DatasetError(
                "dataset.external.objects: box columns x0, y0, x1, y1 must be numbers on every row"
            )
        return boxes.astype("int64")
    size = sizes.set_index("image_id")
    values = [
        Canvas(int(size.at[i, "width"]), int(size.at[i, "height"])).box(
            shape, POSITION_CENTRES[position]
        )
        for i, shape, position in zip(
            objects["image_id"].astype(str), objects["shape"], objects["position"]
        )
    ]
    return pd.DataFrame(values, index=objects.index, columns=BOX_COLUMNS)


def check_boxes(objects: pd.DataFrame, boxes: pd.DataFrame, sizes: pd.DataFrame, crop: bool):
    """Problems with boxes: outside their image, or cut by the model's centre crop."""
    size = sizes.set_index("image_id").loc[objects["image_id"].astype(str)]
    w, h = size["width"].to_numpy(), size["height"].to_numpy()
    b = boxes.to_numpy()
    ids = objects["image_id"].astype(str).to_numpy()
    problems = []
    outside = (b[:, 0] < 0) | (b[:, 1] < 0) | (b[:, 2] > w) | (b[:, 3] > h)
    outside |= (b[:, 2] <= b[:, 0]) | (b[:, 3] <= b[:, 1])
    if outside.any():
        problems.append(
            f"object box(es) empty or outside their image (x1, y1 exclusive, in pixels): "
            f"{_some(dict.fromkeys(ids[outside]))}"
        )
    if crop:
        cut = np.array(
            [
                boxes_outside(b[k], seen_region(w[k], h[k], crop=True))[0] and not outside[k]
                for k in range(len(b))
            ],
            dtype=bool,
        )
        if cut.any():
            shown = [f"{i} ({w[k]}x{h[k]})" for k, i in enumerate(ids) if cut[k]]
            problems.append(
                "object(s) lie outside the centre square the model sees (its preprocessing "
                "resizes the shorter side and crops the centre), in "
                f"{_some(dict.fromkeys(shown))}; pad these images to square with the "
                "background colour (and shift their boxes), or set "
                "`activations.preprocess: reference`, which squashes the whole image"
            )
    return problems


def validate_external(
    objects: pd.DataFrame,
    image_dir: str | Path,
    vocab: Vocabulary,
    source: str = "dataset.external",
    crop: bool = True,
) -> dict[str, Path]:
    """Check an external dataset; return image_id -> image file.

    Reports every problem by name at once: missing columns, unknown feature values,
    images listed but not found, image ids that match several files, an object listed
    twice, images whose objects repeat a shape, colour or position, files that are not
    readable images, and object boxes outside their image or (crop=True, the model's own
    preprocessing) outside the centre square the model sees.
    """
    problems = []
    missing_cols = [c for c in REQUIRED_COLUMNS if c not in objects.columns]
    if missing_cols:
        raise DatasetError(
            f"{source}: the objects table lacks column(s) {missing_cols}; it needs "
            f"{REQUIRED_COLUMNS} (and optionally object, x0, y0, x1, y1)"
        )
    for kind in KINDS:
        allowed = set(vocab.values(kind))
        bad = sorted(set(objects[kind].astype(str)) - allowed)
        if bad:
            problems.append(
                f"unknown {kind} value(s) {bad} (dataset.{kind}s allows {sorted(allowed)}: "
                f"add them there or fix the table)"
            )
    files = image_files(image_dir)
    ids = objects["image_id"].astype(str)
    missing = sorted(set(ids) - set(files))
    if missing:
        problems.append(f"{len(missing)} image(s) not found in {image_dir}: {_some(missing)}")
    ambiguous = sorted(i for i in set(ids) if len(files.get(i, [])) > 1)
    if ambiguous:
        problems.append(
            f"duplicated image id(s), several files each: {_some(ambiguous)}; keep one file per id"
        )
    if "object" in objects.columns:
        dup = objects.assign(image_id=ids).duplicated(["image_id", "object"], keep=False)
        if dup.any():
            problems.append(
                f"object numbers listed twice in image(s) {_some(sorted(set(ids[dup])))}"
            )
    for kind in KINDS:
        dup = objects.assign(image_id=ids).duplicated(["image_id", kind], keep=False)
        if dup.any():
            problems.append(f"image(s) with a repeated {kind}: {_some(sorted(set(ids[dup])))}")
    if problems:
        raise DatasetError(f"{source}: " + "; ".join(problems))
    chosen = {i: files[i][0] for i in dict.fromkeys(ids)}
    try:
        sizes = inspect_images(chosen)
        problems = check_boxes(objects, object_boxes(objects, sizes), sizes, crop)
    except DatasetError as e:
        raise DatasetError(f"{source}: {e}") from None
    if problems:
        raise DatasetError(f"{source}: " + "; ".join(problems))
    return chosen


def import_external(
    objects: pd.DataFrame,
    files: dict[str, Path],
    image_dir: str | Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copy a validated external dataset into the workflow's layout (RGB PNG, tables).

    Images that are not plain RGB are converted, transparency composited onto white (the
    datasets' background; black is a vocabulary colour), and each one is logged. Boxes that
    the table lacks come from the nominal geometry of each position scaled to the image.
    """
    image_dir = Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    objects = objects.copy()
    objects["image_id"] = objects["image_id"].astype(str)
    if "object" not in objects.columns:
        objects["object"] = objects.groupby("image_id", sort=False).cumcount()
    sizes = inspect_images(files)
    for row in sizes[sizes["mode"] != "RGB"].itertuples(index=False):
        log.warning(f"{row.path}: mode {row.mode}, converted to RGB (transparency onto white)")
    for image_id, src in files.items():
        with Image.open(src) as im:
            to_rgb(im).save(image_dir / f"{image_id}.png")
    areas = sizes["width"] * sizes["height"]
    log.info(
        f"imported {len(files)} images, {sizes['width'].min()}-{sizes['width'].max()} x "
        f"{sizes['height'].min()}-{sizes['height'].max()} px; each is resized to the model's input"
    )
    if areas.max() > 16 * areas.min():
        log.warning("image sizes differ more than 16-fold in area: objects differ in detail")
    objects[BOX_COLUMNS] = object_boxes(objects, sizes).astype("int64")
    objects["object"] = objects["object"].astype("int64")
    return images_table(objects, str(image_dir)), objects[OBJECT_COLUMNS]
