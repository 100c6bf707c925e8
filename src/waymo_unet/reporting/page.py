"""One self-contained HTML report page: headings, captions, embedded PNGs and tables.

Images are inlined as base64 and the styles sit in the page, so the single file can be
mailed, attached to a run or opened offline; links point only to files beside it.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from PIL import Image

MAX_TABLE_ROWS = 200
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 1200px; margin: 2rem auto; padding: 0 1.5rem; line-height: 1.45; }
h1 { font-size: 1.7rem; margin-bottom: 0.3rem; }
h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
nav ol { columns: 2; padding-left: 1.2rem; }
.caption { color: #555; margin: 0.3rem 0 0.8rem; }
figure { margin: 0.5rem 0; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 0.9rem; margin: 0.6rem 0; }
th, td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #e4e4e4; text-align: right; }
th { background: #f4f4f4; }
td:first-child, th:first-child { text-align: left; }
"""


@dataclass(frozen=True)
class ReportSection:
    """One part of a report page; every field but the title is optional.

    ``png`` is embedded inline; ``image_scale`` is how many image pixels make one page
    pixel (2 for charts rendered at ``scale_factor=2``), so they show crisp at their size.
    ``link`` names a file beside the page (e.g. the chart's interactive HTML).
    """

    title: str
    caption: str = ""
    png: bytes | None = None
    link: str | None = None
    table: pd.DataFrame | None = None
    metrics: Mapping[str, Any] | None = None
    image_scale: float = 1.0


def report_page(title: str, sections: Sequence[ReportSection], intro: str = "") -> str:
    """A complete HTML document with a table of contents and one block per section."""
    anchors = [f"s{index}-{_slug(section.title)}" for index, section in enumerate(sections, 1)]
    contents = "".join(
        f'<li><a href="#{anchor}">{html.escape(section.title)}</a></li>'
        for anchor, section in zip(anchors, sections, strict=True)
    )
    body = "\n".join(
        _section_html(section, anchor) for anchor, section in zip(anchors, sections, strict=True)
    )
    intro_html = f'<p class="caption">{html.escape(intro)}</p>' if intro else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{intro_html}\n"
        f"<nav><ol>{contents}</ol></nav>\n{body}\n</body>\n</html>\n"
    )


def _section_html(section: ReportSection, anchor: str) -> str:
    """The HTML of one section: heading, caption, image, link, metrics, table."""
    parts = [f'<section id="{anchor}">', f"<h2>{html.escape(section.title)}</h2>"]
    if section.caption:
        parts.append(f'<p class="caption">{html.escape(section.caption)}</p>')
    if section.png is not None:
        parts.append(_image_html(section.png, section.title, section.image_scale))
    if section.link:
        parts.append(_link_html(section.link))
    if section.metrics:
        parts.append(_metrics_html(section.metrics))
    if section.table is not None:
        parts.append(_table_html(section.table))
    parts.append("</section>")
    return "\n".join(parts)


def _image_html(png: bytes, alt: str, scale: float) -> str:
    """An ``<img>`` carrying the PNG as a data URI, sized to its page pixels."""
    with Image.open(io.BytesIO(png)) as image:
        width = round(image.width / scale)
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" '
        f'width="{width}"></figure>'
    )


def _link_html(link: str) -> str:
    """A link to a file beside the page; absolute URLs are refused to keep it offline."""
    if re.match(r"^([a-z][a-z0-9+.-]*:|//|/)", link, flags=re.IGNORECASE):
        raise ValueError(f"report links must be relative file names, got {link!r}")
    return f'<p><a href="{html.escape(link)}">interactive version ({html.escape(link)})</a></p>'


def _metrics_html(metrics: Mapping[str, Any]) -> str:
    """A two-column table of metric names and neatly formatted values."""
    rows = "".join(
        f"<tr><td>{html.escape(str(name))}</td><td>{html.escape(_format_value(value))}</td></tr>"
        for name, value in metrics.items()
    )
    return f'<table class="metrics"><tr><th>metric</th><th>value</th></tr>{rows}</table>'


def _table_html(table: pd.DataFrame) -> str:
    """A DataFrame as an HTML table (first rows only if it is long)."""
    note = ""
    if len(table) > MAX_TABLE_ROWS:
        note = f'<p class="caption">First {MAX_TABLE_ROWS} of {len(table)} rows.</p>'
    rendered = table.head(MAX_TABLE_ROWS).to_html(
        index=False, border=0, na_rep="", float_format=_format_float, classes="data"
    )
    return rendered + note


def _format_value(value: Any) -> str:
    """Floats to four significant digits, containers as JSON, anything else as text."""
    if isinstance(value, float):
        return _format_float(value)
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def _format_float(value: float) -> str:
    """Four significant digits: enough to compare runs, short enough to read."""
    return format(value, ".4g")


def _slug(text: str) -> str:
    """A lowercase anchor name made of letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
