"""``inparsx report RUN_DIR``: one self-contained static HTML page about a run.

It shows the filled recipe, the collection check, the metrics with significance, per-query differences
(trained against BM25 and against zero-shot) as sorted bar plots with the queries that gained and lost most,
the filters' drop reasons, histograms of synthetic query length and score, sample synthetic queries with
their documents' titles, the training loss curve and a tune stage's candidates. Figures are matplotlib PNGs
embedded as base64, styles are inline: the file opens offline, with nothing beside it. Stages that did not run
are left out. The evaluate stage writes ``report.html`` at the end of ``inparsx run``.
"""

from __future__ import annotations

import datetime
from html import escape
from pathlib import Path

from inparsx.errors import InparsxError
from inparsx.io import atomic_write, storage_errors

REPORT_FILE = "report.html"

STYLE = """
body { font-family: -apple-system, 'Segoe UI', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; line-height: 1.45; padding: 0 1em; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
nav a { margin-right: 1em; } table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
img { max-width: 100%; display: block; margin: 0.8em 0; } .meta { color: #666; }
"""


def render(run_dir: str | Path) -> str:
    """The report's HTML for ``run_dir``.

    Raises:
        InparsxError: ``run_dir`` does not exist or holds nothing to report.
    """
    from inparsx.report.sections import BUILDERS, RunFiles

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InparsxError(f"{run_dir}: no such run directory")
    files = RunFiles(run_dir)
    sections = [section for build in BUILDERS if (section := build(files)) is not None]
    if not sections:
        raise InparsxError(
            f"{run_dir}: nothing to report (no recipe.toml and no stage output; `inparsx run` writes them)"
        )
    name = files.recipe.get("recipe", {}).get("name", run_dir.name)
    dataset = files.recipe.get("dataset", {})
    made = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    nav = "".join(f'<a href="#{s.id}">{escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.id}"><h2>{escape(s.title)}</h2>{s.body}</section>' for s in sections)
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>inparsx: {escape(name)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(name)}</h1>"
        f'<p class="meta">{escape(dataset.get("name", ""))}, evaluated on {escape(dataset.get("eval_split", ""))}; '
        f"run directory {escape(str(run_dir.resolve()))}; report made {made}.</p>"
        f"<nav>{nav}</nav>{body}</body></html>\n"
    )


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of ``run_dir`` to ``out`` (default ``RUN_DIR/report.html``), atomically; returns its path.

    Raises:
        InparsxError: ``run_dir`` does not exist or holds nothing to report.
        StorageError: ``out`` cannot be written.
    """
    path = Path(out) if out is not None else Path(run_dir) / REPORT_FILE
    html = render(run_dir)
    with storage_errors(path), atomic_write(path) as handle:
        handle.write(html)
    return path
