"""Render the audit pages from the package's Jinja2 templates.

The templates and the page assets (``audit.js``, ``audit.css``, copied next to each
page so that it opens offline) are package data in ``ultrabones/templates/``.
"""

from __future__ import annotations

from importlib.resources import files

from ..qa import COLOURS
from ..store import STATUSES
from ..vocabulary import Reason
from .images import FINAL_COLOUR
from .tables import FRAME_COLUMNS, INDEX_COLUMNS

__all__ = [
    "ASSETS",
    "SCRIPT",
    "STYLE",
    "asset_text",
    "render_index_page",
    "render_sweep_page",
]

#: The page's script and style sheet, linked by name (the templates).
SCRIPT, STYLE = "audit.js", "audit.css"
#: Files copied next to every page.
ASSETS = (SCRIPT, STYLE)
#: Overlay legend: what each contour or fill colour shows.
_LEGEND = (
    ("initial contour", COLOURS["full_initial"]),
    ("refined contour", COLOURS["full_refined"]),
    ("final label contour", FINAL_COLOUR),
    ("removed as shadow", COLOURS["shadow"]),
    ("removed as oblique", COLOURS["oblique"]),
)


def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("ultrabones", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def asset_text(name: str) -> str:
    """Return the text of a page asset (a name of :data:`ASSETS`)."""
    return files("ultrabones").joinpath("templates", name).read_text()


def _headings(columns) -> list[dict]:
    return [
        {"key": k, "label": label, "kind": "text" if d is None else "num"}
        for k, label, d in columns
    ]


def render_sweep_page(
    rows: list[dict], *, title: str, summary: str, thumb: tuple[int, int]
) -> str:
    """Return the HTML of a sweep's page.

    Parameters
    ----------
    rows : list of dict
        :func:`ultrabones.auditpage.tables.frame_rows` of the sweep.
    title : str
        ``<specimen>/<sweep>``.
    summary : str
        :func:`ultrabones.auditpage.tables.summary_text` of the sweep.
    thumb : tuple of int
        Thumbnail ``(rows, cols)``: the images' size attributes, so that the page
        lays out before they load and only the rows in view load them.
    """
    counts = {r.value: 0 for r in Reason}
    for row in rows:
        counts[row["reason"]] += 1
    return (
        _environment()
        .get_template("audit_sweep.html.j2")
        .render(
            title=title,
            summary=summary,
            columns=_headings(FRAME_COLUMNS),
            rows=rows,
            statuses=STATUSES,
            reasons=counts,
            thumb={"height": thumb[0], "width": thumb[1]},
            legend=[
                (name, "#{:02x}{:02x}{:02x}".format(*rgb)) for name, rgb in _LEGEND
            ],
        )
    )


def render_index_page(rows: list[dict], *, title: str) -> str:
    """Return the HTML of the release's index page.

    Parameters
    ----------
    rows : list of dict
        :func:`ultrabones.auditpage.tables.index_rows` of the release's sweeps.
    title : str
    """
    return (
        _environment()
        .get_template("audit_index.html.j2")
        .render(title=title, columns=_headings(INDEX_COLUMNS), rows=rows)
    )
