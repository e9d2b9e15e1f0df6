"""``ultrabones otsu``: Otsu threshold of the final labels' intensities of a release."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``otsu`` subcommand."""
    p = sub.add_parser(
        "otsu",
        help="Otsu threshold over the label pixel intensities of label stores",
        description="Histograms the image intensities under the final labels of the "
        "kept frames of every store and writes the threshold (high: intensity > it).",
    )
    p.add_argument("stores", nargs="+", help="label stores (.zarr)")
    p.add_argument("--variable", default="label", help="mask variable of the stores")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--figure", help="optional PNG of the histogram with the threshold")
    p.set_defaults(run=run)


def run(args) -> int:
    """Accumulate the histogram, compute the threshold and write the JSON."""
    from ..errors import InputDataError
    from ..evaluate import otsu_threshold
    from ..evaluate.figures import histogram_figure
    from ..io.tables import save_figure, write_json

    counts, frames = _histogram(args.stores, args.variable)
    try:
        threshold = otsu_threshold(counts)
    except ValueError as err:
        raise InputDataError(f"{', '.join(args.stores)}: {err}") from err
    write_json(
        args.out,
        {
            "threshold": threshold,
            "counts": counts.tolist(),
            "pixels": int(counts.sum()),
            "frames": frames,
            "variable": args.variable,
            "stores": list(args.stores),
            "rule": "high: intensity > threshold",
        },
        indent=2,
    )
    if args.figure:
        save_figure(histogram_figure(counts, threshold), args.figure)
    print(
        f"otsu threshold {threshold:g} over {int(counts.sum())} pixels, {frames} frames"
    )
    return 0


def _histogram(stores, variable: str):
    """Return the kept frames' label-pixel intensity histogram and their count."""
    import numpy as np

    from ..errors import InputDataError
    from ..evaluate import label_histogram
    from ..io.masks import KEPT, open_mask_source

    counts, frames = np.zeros(256, dtype=np.int64), 0
    for path in stores:
        source = open_mask_source(path, variable=variable)
        if source.read_image is None:
            raise InputDataError(f"{path}: label store has no image variable")
        for name, status in zip(source.names, source.status, strict=True):
            if status == KEPT:
                counts += label_histogram(
                    source.read_image(name), source.read_mask(name)
                )
                frames += 1
    return counts, frames
