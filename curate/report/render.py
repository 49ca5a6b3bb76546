"""HTML from the report templates: one self-contained file (styles inline, images as data: URIs,
no script, nothing fetched)."""

from __future__ import annotations

import base64

import jinja2

_ENVIRONMENT = jinja2.Environment(loader=jinja2.PackageLoader("curate.report", "templates"),
                                  autoescape=jinja2.select_autoescape(["html", "j2"]),
                                  undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_ENVIRONMENT.filters["num"] = lambda value: f"{value:,}" if isinstance(value, int) else f"{value:,.4g}"
_ENVIRONMENT.filters["spread"] = lambda cell: (f"{cell['mean']:.4f} ± {cell['std']:.4f}" if cell.get("std") is not None
                                               else f"{cell['mean']:.4f}")  # one seed: no spread
_ENVIRONMENT.filters["fixed"] = lambda value, digits=4: "–" if value is None else f"{value:.{digits}f}"
_ENVIRONMENT.filters["count"] = lambda n, noun: f"{n:,} {noun}" + ("" if n == 1 else "s")  # 1 sample, 2 samples
_ENVIRONMENT.filters["pct"] = lambda part, whole: f"{100 * part / whole:.1f}%" if whole else "–"


def data_uri(data: bytes, mime: str) -> str:
    """Bytes as a data: URI, the way every image is embedded in a report."""
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def render(template: str, context: dict) -> str:
    """One template rendered with a context."""
    return _ENVIRONMENT.get_template(template).render(**context)
