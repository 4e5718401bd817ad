"""The results page and JSON API, mounted on Airflow's api-server by a plugin.

Everything shown comes from the serving database (``PLATFORM_WAREHOUSE_URL``),
from the published tables of ``contracts.md`` only, so no student name can
appear. Charts are inline SVG drawn here: the page needs no script and no
network beyond the api-server. Every route asks Airflow's auth manager for the
signed-in user (the UI's session cookie or a bearer token).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from dataplatform.tables import TABLES

MAX_PAGE = 1000
HISTORY_DATES = 60  # the "F1 over time" chart: the latest training dates
SUBJECTS = ("puntaje_mat", "puntaje_ing", "puntaje_ciencias")
SPLITS = ("random", "holdout_capture")
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759")


class ServingDatabase:
    """Read-only queries on the published tables."""

    def __init__(self, url: str):
        from dataplatform.publish import serving_engine

        self.engine = serving_engine(url)
        self.metadata = sa.MetaData()
        self.tables = {name: definition.sql_table(self.metadata)
                       for name, definition in TABLES.items()}
        self._present: set[str] = set()

    def present(self, name: str) -> bool:
        # Published tables appear (on first publish) and are never dropped, so
        # only a table not seen yet costs a catalogue query.
        if name not in self._present:
            self._present = set(sa.inspect(self.engine).get_table_names())
        return name in self._present

    def rows(self, name: str, ds: dt.date | None = None, limit: int | None = None,
             offset: int = 0, **equal) -> list[dict]:
        if not self.present(name):
            return []
        table = self.tables[name]
        query = sa.select(table)
        if ds is not None:
            query = query.where(table.c.ds == ds)
        for column, value in equal.items():
            query = query.where(table.c[column] == value)
        query = query.order_by(*table.c).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def count(self, name: str, ds: dt.date | None = None) -> int:
        if not self.present(name):
            return 0
        table = self.tables[name]
        query = sa.select(sa.func.count()).select_from(table)
        if ds is not None:
            query = query.where(table.c.ds == ds)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()

    def model_history(self, dates: int) -> list[dict]:
        """traffic_model_metrics of the latest ``dates`` training dates."""
        if not self.present("traffic_model_metrics"):
            return []
        table = self.tables["traffic_model_metrics"]
        latest = (sa.select(table.c.ds).distinct().order_by(table.c.ds.desc())
                  .limit(dates).subquery())
        query = sa.select(table).where(table.c.ds.in_(sa.select(latest.c.ds))).order_by(
            *table.c)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def dates(self) -> list[dt.date]:
        """Published dates, newest first (every run publishes data_quality)."""
        if not self.present("data_quality"):
            return []
        table = self.tables["data_quality"]
        with self.engine.connect() as connection:
            return list(connection.execute(
                sa.select(table.c.ds).distinct().order_by(table.c.ds.desc())).scalars())


def _json_value(value):
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; an undefined correlation is null
    return value


def _parse_ds(ds: str | None) -> dt.date | None:
    if ds is None or ds == "":
        return None
    try:
        return dt.date.fromisoformat(ds)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"ds must be YYYY-MM-DD, got {ds!r}") from None


def create_app(warehouse_url: str | None = None, authorize: Callable | None = None) -> FastAPI:
    """The app (its links are relative: mount it anywhere); ``authorize`` is the
    dependency each route runs (Airflow's auth manager by default)."""
    if warehouse_url is None:
        from dataplatform.settings import PlatformSettings

        warehouse_url = PlatformSettings.from_env().warehouse_url
    if authorize is None:
        from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
        from airflow.api_fastapi.core_api.security import requires_access_view

        authorize = requires_access_view(AccessView.WEBSITE)
    database = ServingDatabase(warehouse_url)
    # No OpenAPI routes: FastAPI adds them without the app's dependencies.
    app = FastAPI(title="Data platform results", dependencies=[Depends(authorize)],
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/api/tables")
    def list_tables() -> dict:
        return {"tables": [{"name": name, "columns": definition.column_names,
                            "rows": database.count(name)}
                           for name, definition in TABLES.items()]}

    @app.get("/api/tables/{name}")
    def table_rows(name: str, ds: str | None = None,
                   limit: int = Query(100, ge=1, le=MAX_PAGE),
                   offset: int = Query(0, ge=0)) -> dict:
        if name not in TABLES:
            raise HTTPException(status_code=404, detail=f"no published table {name!r}")
        day = _parse_ds(ds)
        rows = database.rows(name, day, limit=limit, offset=offset)
        return {"table": name, "ds": ds, "total": database.count(name, day), "limit": limit,
                "offset": offset,
                "rows": [{k: _json_value(v) for k, v in row.items()} for row in rows]}

    @app.get("/", response_class=HTMLResponse)
    def page(ds: str | None = None, model_version: str | None = None,
             split: str = Query("holdout_capture", pattern="^(random|holdout_capture)$")) -> str:
        dates = database.dates()
        day = _parse_ds(ds) or (dates[0] if dates else None)
        return render_page(database, dates, day, model_version, split)

    return app


# --- the page -----------------------------------------------------------------------------


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def format_number(value) -> str:
    """Four significant digits for measures, every digit for counts."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return "–"
        # .4g would write 9999.7 as 1e+04: from there on, whole numbers.
        return f"{value:,.4g}" if abs(value) < 9999.5 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "–" if value is None else str(value)


def html_table(rows: Sequence[Mapping], columns: Sequence[str], table_id: str) -> str:
    if not rows:
        return f'<p class="empty" id="{_e(table_id)}">Nothing published for this date.</p>'
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = "".join(
        "<tr>" + "".join(
            f'<td class="{"num" if isinstance(row[c], int | float) else ""}">'
            f"{_e(format_number(row[c]))}</td>" for c in columns) + "</tr>"
        for row in rows)
    return f'<table id="{_e(table_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def bar_chart(categories: Sequence[str], series: Mapping[str, Sequence[float]],
              title: str, lo: float = 0.0, hi: float | None = None) -> str:
    """Grouped vertical bars; ``lo`` below zero draws negative bars down from 0."""
    if not categories:
        return ""
    values = [v for vs in series.values() for v in vs if v is not None and math.isfinite(v)]
    hi = hi if hi is not None else max([*values, 1.0]) * 1.1
    width, height, left, bottom = max(320, 70 * len(categories) + 60), 220, 40, 30
    plot_h = height - bottom - 10
    band = (width - left - 10) / len(categories)
    bar = band * 0.8 / max(1, len(series))

    def y(value: float) -> float:
        return 10 + plot_h * (hi - value) / (hi - lo)

    parts = [f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{width}" '
             f'height="{height + 20 * len(series)}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - 10}" y2="{y(0):.1f}" '
             'stroke="#888"/>',
             f'<text x="2" y="{y(hi) + 10:.1f}" font-size="10">{_e(format_number(hi))}</text>',
             f'<text x="2" y="{y(lo):.1f}" font-size="10">{_e(format_number(lo))}</text>']
    for i, category in enumerate(categories):
        x0 = left + i * band + band * 0.1
        for j, (name, vs) in enumerate(series.items()):
            value = vs[i]
            if value is None or not math.isfinite(value):
                continue
            top, base = (y(value), y(0)) if value >= 0 else (y(0), y(value))
            label = f"{category} {name}: {format_number(value)}"
            parts.append(f'<rect x="{x0 + j * bar:.1f}" y="{top:.1f}" width="{bar - 1:.1f}" '
                         f'height="{max(base - top, 0.5):.1f}" fill="{PALETTE[j % 4]}">'
                         f"<title>{_e(label)}</title></rect>")
        parts.append(f'<text x="{x0 + band * 0.4:.1f}" y="{height - 12}" font-size="11" '
                     f'text-anchor="middle">{_e(category)}</text>')
    for j, name in enumerate(series):
        parts.append(f'<rect x="{left}" y="{height + 20 * j - 2}" width="10" height="10" '
                     f'fill="{PALETTE[j % 4]}"/><text x="{left + 14}" y="{height + 20 * j + 7}" '
                     f'font-size="11">{_e(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def line_chart(points: Mapping[str, Sequence[tuple[str, float]]], title: str) -> str:
    """One line per series over dates (x: the dates in order), y in 0..1."""
    dates = sorted({d for series in points.values() for d, v in series
                    if v is not None and math.isfinite(v)})
    if not dates:
        return ""
    width, height, left = max(360, 60 * len(dates) + 60), 220, 40

    def x(date: str) -> float:
        return left + (width - left - 20) * (dates.index(date) / max(1, len(dates) - 1))

    def y(value: float) -> float:
        return 10 + 170 * (1 - value)

    parts = [f'<svg class="chart" role="img" aria-label="{_e(title)}" width="{width}" '
             f'height="{height + 20 * len(points)}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{y(0)}" x2="{width - 10}" y2="{y(0)}" stroke="#888"/>',
             f'<text x="2" y="{y(1) + 4}" font-size="10">1.0</text>',
             f'<text x="2" y="{y(0)}" font-size="10">0.0</text>']
    for j, (name, series) in enumerate(points.items()):
        ordered = sorted((d, v) for d, v in series if v is not None and math.isfinite(v))
        path = " ".join(f"{x(d):.1f},{y(v):.1f}" for d, v in ordered)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{PALETTE[j % 4]}" '
                     'stroke-width="2"/>')
        parts += [f'<circle cx="{x(d):.1f}" cy="{y(v):.1f}" r="3" fill="{PALETTE[j % 4]}">'
                  f"<title>{_e(d)} {_e(name)}: {v:.4f}</title></circle>" for d, v in ordered]
        parts.append(f'<rect x="{left}" y="{height + 20 * j - 2}" width="10" height="10" '
                     f'fill="{PALETTE[j % 4]}"/><text x="{left + 14}" y="{height + 20 * j + 7}" '
                     f'font-size="11">{_e(name)}</text>')
    for date in dates:
        parts.append(f'<text x="{x(date):.1f}" y="{height - 20}" font-size="10" '
                     f'text-anchor="middle">{_e(date)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heat_map(cells: Iterable[Mapping]) -> str:
    """The confusion matrix: rows actual, columns predicted, shade by the row's share."""
    cells = list(cells)
    if not cells:
        return '<p class="empty">No confusion matrix for this date and model.</p>'
    labels = sorted({c["actual"] for c in cells} | {c["predicted"] for c in cells})
    counts = {(c["actual"], c["predicted"]): c["count"] for c in cells}
    totals = {a: sum(counts.get((a, p), 0) for p in labels) for a in labels}
    head = "".join(f"<th>{_e(p)}</th>" for p in labels)
    body = []
    for actual in labels:
        tds = []
        for predicted in labels:
            n = counts.get((actual, predicted), 0)
            share = n / totals[actual] if totals[actual] else 0.0
            colour = f"rgba(78,121,167,{share:.3f})"
            ink = "#fff" if share > 0.5 else "#000"
            tds.append(f'<td class="num cell" style="background:{colour};color:{ink}" '
                       f'title="{_e(actual)} as {_e(predicted)}: {share:.1%}">{n:,}</td>')
        body.append(f"<tr><th>{_e(actual)}</th>{''.join(tds)}</tr>")
    return (f'<table id="confusion-matrix" class="heat"><thead><tr><th>actual \\ predicted</th>'
            f"{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1200px}
h1{font-size:1.4rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.heat td.cell{min-width:4rem}.empty{color:#777;font-style:italic}
form{display:inline-flex;gap:.5rem;align-items:center}.chart{display:block;margin:.5rem 0}
"""


def render_page(database: ServingDatabase, dates: list[dt.date], day: dt.date | None,
                model_version: str | None, split: str) -> str:
    options = "".join(f'<option value="{d}"{" selected" if d == day else ""}>{d}</option>'
                      for d in dates)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Results {_e(day or '')}"
             f"</title><style>{STYLE}</style></head><body>",
             '<h1>Data platform results</h1>',
             f'<form method="get"><label for="ds">Date</label><select id="ds" name="ds">{options}'
             '</select><button type="submit">Show</button></form>',
             # relative: right under any [api] base_url sub-path
             ' <a href="api/tables">JSON API</a>']
    if day is None:
        parts.append('<p class="empty">Nothing has been published yet.</p></body></html>')
        return "".join(parts)
    parts.append(f'<p>Showing <strong id="shown-ds">{_e(day)}</strong>.</p>')

    parts.append("<h2>Data quality</h2>")
    parts.append(html_table(database.rows("data_quality", day), TABLES["data_quality"]
                            .column_names[1:], "data-quality"))
    parts.append(html_table(database.rows("data_quality_rejections", day),
                            ("dataset", "reason", "rows"), "data-quality-rejections"))

    parts.append("<h2>Students: score summary</h2>")
    parts.append(html_table(database.rows("students_score_summary", day),
                            ("subject", "n", "mean", "stddev", "min", "max"), "score-summary"))
    for table, key, heading in (("students_by_grade", "grado", "per grade"),
                                ("students_by_programa", "programa", "per programme")):
        rows = database.rows(table, day)
        parts.append(f"<h2>Students: {heading}</h2>")
        parts.append(bar_chart([str(r[key]) for r in rows],
                               {s: [r[f"avg_{s}"] for r in rows] for s in SUBJECTS},
                               f"average scores {heading}", hi=100.0))
        parts.append(html_table(rows, TABLES[table].column_names[1:], table.replace("_", "-")))
    rows = database.rows("students_awards_correlation", day)
    parts.append("<h2>Students: awards and scores (Pearson r)</h2>")
    parts.append(bar_chart([r["subject"] for r in rows], {"pearson_r": [r["pearson_r"]
                           for r in rows]}, "awards/score correlation", lo=-1.0, hi=1.0))
    parts.append(html_table(rows, ("subject", "n", "pearson_r"), "awards-correlation"))

    parts.append("<h2>Traffic model</h2>")
    history = database.model_history(HISTORY_DATES)
    parts.append(line_chart({s: [(str(r["ds"]), r["f1"]) for r in history if r["split"] == s]
                             for s in SPLITS}, f"weighted F1, last {HISTORY_DATES} dates"))
    today = database.rows("traffic_model_metrics", day)
    parts.append(html_table(today, ("model_version", "split", "accuracy", "f1",
                                    "weighted_precision", "weighted_recall", "train_rows",
                                    "test_rows", "promoted"), "model-metrics"))
    versions = sorted({r["model_version"] for r in today})
    if versions:
        promoted = [r["model_version"] for r in today if r["promoted"]]
        chosen = model_version if model_version in versions else (promoted or versions)[-1]
        parts.append(f"<h3>Confusion matrix: {_e(chosen)}, {_e(split)} split</h3>")
        parts.append(heat_map(database.rows("traffic_confusion_matrix", day,
                                            model_version=chosen, split=split)))
    parts.append("</body></html>")
    return "".join(parts)
