"""Human-facing views of a metrics document: a console table, a PNG plot, an HTML page."""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

TABLE_METRICS = ("ndcg@10", "recall@10", "hit@10", "mrr@10", "ndcg@20", "recall@20", "coverage@10",
                 "cold_item_share@10", "cold_item_recall@10")


def column(row: dict[str, Any]) -> int | str:
    """Table column of a row: its k, or "query" for the query-only (k = 0) cases."""
    return "query" if row.get("signal") == "query" else row["k"]


def _pivot(doc: dict[str, Any], metric: str) -> tuple[list[str], list[int | str], dict[tuple[str, int | str], dict[str, Any]]]:
    rows = [r for r in doc["results"] if r["metric"] == metric]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    cols = sorted({column(r) for r in rows}, key=lambda c: (isinstance(c, str), str(c).zfill(3)))
    return methods, cols, {(r["method"], column(r)): r for r in rows}


def _label(col: int | str) -> str:
    return "k=0 query" if col == "query" else f"k={col}"


def _ci(cell: dict[str, Any], sep: str = ", ") -> str:
    ci = cell.get("ci95")
    return f" [{ci[0]:.3f}{sep}{ci[1]:.3f}]" if ci else ""


def plot_ndcg(doc: dict[str, Any], path: Path) -> None:
    methods, cols, cell = _pivot(doc, "ndcg@10")
    ks = [c for c in cols if isinstance(c, int)]
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for m in methods:
        xs = [k for k in ks if (m, k) in cell]
        ys = [cell[(m, k)]["value"] for k in xs]
        cis = [cell[(m, k)].get("ci95") or (cell[(m, k)]["value"],) * 2 for k in xs]  # bootstrap: 0 -> no bars
        lo = [y - ci[0] for y, ci in zip(ys, cis)]
        hi = [ci[1] - y for y, ci in zip(ys, cis)]
        line = ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=m)
        if (m, "query") in cell:  # query-only cases: a hollow marker at k = 0
            ax.plot([0], [cell[(m, "query")]["value"]], marker="s", mfc="none", color=line[0].get_color(), ms=9)
    ax.set_xlabel("revealed items k (hollow square: query only)")
    ax.set_ylabel("NDCG@10 (95% bootstrap CI)")
    ax.set_xticks(ks)
    ax.set_title(f"{doc['dataset']} - {doc['split']} split")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def console_table(doc: dict[str, Any]):
    from rich.table import Table

    methods, ks, cell = _pivot(doc, "ndcg@10")
    _, _, rec = _pivot(doc, "recall@10")
    t = Table(title=f"{doc['dataset']} / {doc['split']} split - NDCG@10 [95% CI] (Recall@10), n users per k")
    t.add_column("method")
    for k in ks:
        n = next((cell[(m, k)]["n_users"] for m in methods if (m, k) in cell), 0)
        t.add_column(f"{_label(k)} (n={n})", justify="right")
    t.add_column("fit+score s", justify="right")
    best = {k: max((cell[(m, k)]["value"] for m in methods if (m, k) in cell), default=None) for k in ks}
    for m in methods:
        cells = []
        for k in ks:
            if (m, k) not in cell:
                cells.append("-")
                continue
            c = cell[(m, k)]
            txt = f"{c['value']:.4f}{_ci(c, ',')} ({rec[(m, k)]['value']:.3f})"
            cells.append(f"[bold]{txt}[/]" if c["value"] == best[k] else txt)
        tm = doc.get("timing", {}).get(m, {})
        cells.append(f"{tm.get('fit_s', 0) + tm.get('score_s', 0):.1f}")
        t.add_row(m, *cells)
    return t


def write_report(doc: dict[str, Any], out_dir: Path) -> None:
    png = out_dir / "ndcg_vs_k.png"
    plot_ndcg(doc, png)
    img = base64.b64encode(png.read_bytes()).decode()
    parts = [f"<h1>coldrec evaluation: {html.escape(doc['dataset'])} / {html.escape(doc['split'])} split</h1>",
             f"<p>seed {doc['seed']}; split {html.escape(str(doc['split_info']))}</p>",
             f'<img alt="NDCG@10 vs k" src="data:image/png;base64,{img}">']
    for metric in TABLE_METRICS:
        methods, ks, cell = _pivot(doc, metric)
        if not methods:
            continue
        parts.append(f"<h2>{metric}</h2><table><tr><th>method</th>" + "".join(f"<th>{_label(k)}</th>" for k in ks) + "</tr>")
        for m in methods:
            tds = []
            for k in ks:
                c = cell.get((m, k))
                if not c:
                    tds.append("<td>-</td>")
                    continue
                tds.append(f"<td>{c['value']:.4f}{_ci(c)}<br><small>n={c['n_users']}</small></td>")
            parts.append(f"<tr><td>{html.escape(m)}</td>{''.join(tds)}</tr>")
        parts.append("</table>")
    parts.append("<h2>time (s)</h2><table><tr><th>method</th><th>fit</th><th>score</th></tr>" + "".join(
        f"<tr><td>{html.escape(m)}</td><td>{t['fit_s']}</td><td>{t['score_s']}</td></tr>" for m, t in doc["timing"].items())
        + "</table>")
    style = ("<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}</style>")
    (out_dir / "report.html").write_text(f"<!doctype html><html><head><meta charset='utf-8'>{style}</head><body>"
                                         + "\n".join(parts) + "</body></html>", encoding="utf-8")
