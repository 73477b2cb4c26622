"""Human-readable output of validation: a self-contained HTML page and a console table.

It only reads a :class:`~coldrec.quality.results.ValidationResult`; it imports the result types,
never validation (the result directory's writer imports this module), so there is no import circle.
"""
from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from coldrec.quality.results import Outcome, ValidationResult

if TYPE_CHECKING:  # pragma: no cover
    from rich.table import Table

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem} h2{font-size:1.2rem;margin-top:2rem} h3{font-size:1rem;margin-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem} \
td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} .badge{display:inline-block;padding:.1rem .5rem;border-radius:.3rem;color:#fff;font-weight:600}
.failed,.error{background:#c62828} .passed{background:#2e7d32} .passed_with_warnings,.warning{background:#ef6c00}
.skipped,.off{background:#757575} .critical{background:#6a1b9a} \
.card{border:1px solid #ddd;border-radius:.4rem;padding:.6rem 1rem;margin:.8rem 0}
code{background:#f6f6f6;padding:0 .2rem} .muted{color:#666}
"""


def _e(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        return html.escape(json.dumps(v, default=str))
    return html.escape(str(v))


def _badge(text: str, cls: str | None = None) -> str:
    return f'<span class="badge {html.escape(cls or text)}">{html.escape(text)}</span>'


def _measure(o: Outcome) -> str:
    if o.unexpected_count is not None:
        pct = "" if o.unexpected_percent is None else f" ({o.unexpected_percent:.3g}%)"
        of = "" if o.element_count is None else f" of {o.element_count:,}"
        return f"{o.unexpected_count:,}{of} unexpected{pct}"
    if o.observed_value is None and o.status == "failed":
        return "observed nothing (no rows)"
    if o.observed_value is not None:
        bounds = [f"{k.replace('_value', '')} {v}" for k, v in o.parameters.items() if k in ("min_value", "max_value") and v is not None]
        return f"observed {o.observed_value}" + (f" (expected {', '.join(bounds)})" if bounds and o.failed else "")
    return ""


def _rows(n: int | None) -> str:
    return "unreadable" if n is None else f"{n:,}"


def _samples_table(samples: list[dict[str, Any]]) -> str:
    if not samples:
        return ""
    cols: list[str] = []
    for s in samples:
        cols += [c for c in s if c not in cols]
    head = "".join(f"<th>{_e(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_e(s.get(c))}</td>" for c in cols) + "</tr>" for s in samples)
    return f"<table><tr>{head}</tr>{body}</table>"


def _failing_card(o: Outcome) -> str:
    params = ", ".join(f"<code>{_e(k)}={_e(v)}</code>" for k, v in o.parameters.items())
    parts = [
        f'<div class="card"><h3>{_badge(o.severity)} <code>{_e(o.name)}</code> {_badge(o.status)}</h3>',
        f"<div>{_e(o.description)}</div>",
        f"<div><b>{_e(_measure(o))}</b></div>",
    ]
    if o.details:
        parts.append(f"<div>{_e(o.details)}</div>")
    parts.append(f'<div class="muted">{_e(o.type)} on <b>{_e(o.table)}</b>{": " + params if params else ""}</div>')
    if o.quarantined:
        parts.append(f"<div>{o.quarantined:,} row(s) written to quarantine/{_e(o.table)}.csv</div>")
    if o.samples:
        parts.append(f"<div>sample offending rows (first {len(o.samples)}; <code>_row</code> counts data rows from 1):</div>")
        parts.append(_samples_table(o.samples))
    parts.append("</div>")
    return "".join(parts)


def render_html(r: ValidationResult) -> str:
    c = r.counts()
    crit = [o for o in r.outcomes if o.failed and o.severity == "critical"]
    warn = [o for o in r.outcomes if o.failed and o.severity == "warning"]
    tables = "".join(
        f"<tr><td>{_e(t)}</td><td>{_rows(v['rows'])}</td><td>{_e(v['source'])}</td></tr>" for t, v in r.tables.items())
    baseline = (f"previous accepted batch {_e(r.baseline.get('accepted_at'))}: rows {_e(r.baseline.get('rows'))}"
                if r.baseline else "no previous accepted batch (row-count change not evaluated)")
    rows = "".join(
        f"<tr><td><code>{_e(o.name)}</code></td><td>{_e(o.table)}</td><td>{_badge(o.severity)}</td>"
        f"<td>{_badge(o.status)}</td><td>{_e(_measure(o))}</td><td>{_e(o.details)}</td><td>{_e(o.description)}</td></tr>"
        for o in r.outcomes)
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Data validation: {_e(r.dataset)}</title><style>{_CSS}</style></head>
<body>
<h1>Data validation: {_e(r.dataset)} {_badge(r.status.replace('_', ' '), r.status)}</h1>
<p>{c['expectations']} expectations: {c['passed']} passed, <b>{c['critical_failed']} critical failed</b>,
{c['warning_failed']} warning(s), {c['skipped']} skipped. Critical failures fail the run (exit 1); warnings are reported only.</p>
<table>
<tr><th>run date</th><td>{_e(r.run_date)}</td></tr>
<tr><th>validated at</th><td>{_e(r.validated_at)} in {r.duration_s:.1f} s (Great Expectations {_e(r.gx_version)})</td></tr>
<tr><th>baseline</th><td>{baseline}</td></tr>
<tr><th>accepted</th><td>{'yes: this batch is the new baseline' if r.accepted else 'no: the previous baseline is kept'}</td></tr>
<tr><th>quarantine</th><td>{_e(', '.join(f'{t}: {n:,} rows' for t, n in r.quarantine.items()) or 'none')}</td></tr>
</table>
<h2>Tables</h2><table><tr><th>table</th><th>rows</th><th>source</th></tr>{tables}</table>
<h2>Critical failures ({len(crit)})</h2>{''.join(_failing_card(o) for o in crit) or '<p>none</p>'}
<h2>Warnings ({len(warn)})</h2>{''.join(_failing_card(o) for o in warn) or '<p>none</p>'}
<h2>All expectations</h2>
<table><tr><th>name</th><th>table</th><th>severity</th><th>status</th><th>measure</th><th>details</th><th>description</th></tr>{rows}</table>
<p class="muted">Suites: expectations/*.json; thresholds: params.yaml <code>quality:</code>; machine-readable: result.json.</p>
</body></html>
"""


def console_table(r: ValidationResult) -> Table:
    from rich.table import Table

    t = Table(title=r.summary_line())
    for col in ("expectation", "severity", "status", "measure"):
        t.add_column(col)
    shown = [o for o in r.outcomes if o.failed] or []
    for o in sorted(shown, key=lambda o: (o.severity != "critical", o.name)):
        style = "red" if o.severity == "critical" else "yellow"
        measure = _measure(o) + (f" - {o.details}" if o.details else "")
        t.add_row(o.name, f"[{style}]{o.severity}[/]", o.status, measure)
    if not shown:
        t.add_row("(all expectations passed)", "", "", "")
    return t
