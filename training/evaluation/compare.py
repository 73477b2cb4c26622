"""Compare evaluation runs: the NDCG@10 table of a ``metrics.json``, and with a second one, every row
that differs (full float precision, bootstrap intervals too).

    python -m training.evaluation.compare reports/evaluation/online-retail/time/metrics.json [OTHER/metrics.json]

Why: "behaviour must not change" claims (a refactor, a dependency bump) are checked digit for digit,
not by eye on rounded tables; this is the check issue 14's note quotes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

COLUMNS = ((0, "none", "k=0"), (1, "items", "k=1"), (3, "items", "k=3"), (5, "items", "k=5"), (0, "query", "k=0 query"))


def _key(r: dict[str, Any]) -> tuple:
    return r["method"], r["k"], r["signal"], r["metric"]


def ndcg_table(doc: dict[str, Any]) -> str:
    """Markdown: one row per method, NDCG@10 per k (and the query-only probe)."""
    cells = {(r["method"], r["k"], r["signal"] == "query"): r["value"] for r in doc["results"] if r["metric"] == "ndcg@10"}
    methods = list(dict.fromkeys(r["method"] for r in doc["results"]))
    lines = ["| method | " + " | ".join(c[2] for c in COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for m in methods:
        vals = [cells.get((m, k, sig == "query")) for k, sig, _ in COLUMNS]
        lines.append(f"| {m} | " + " | ".join("-" if v is None else f"{v:.4f}" for v in vals) + " |")
    return "\n".join(lines)


def differences(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Rows whose value or 95% interval differ, rows only in one run, and whether the splits match."""
    ra, rb = {_key(r): r for r in a["results"]}, {_key(r): r for r in b["results"]}
    common = ra.keys() & rb.keys()
    return {
        "rows": (len(ra), len(rb)),
        "values": sorted((k, ra[k]["value"], rb[k]["value"]) for k in common if ra[k]["value"] != rb[k]["value"]),
        "intervals": sorted(k for k in common if ra[k].get("ci95") != rb[k].get("ci95")),
        "only_in_one": sorted(ra.keys() ^ rb.keys()),
        "same_split": a.get("split_info") == b.get("split_info"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics", type=Path, nargs="+", help="one or two metrics.json files")
    a = ap.parse_args(argv)
    if len(a.metrics) > 2:
        ap.error("give one or two metrics.json files")
    docs = []
    for p in a.metrics:
        try:
            docs.append(json.loads(p.read_text(encoding="utf-8")))
            docs[-1]["results"]  # noqa: B018 - a metrics.json has results
        except (OSError, ValueError, KeyError, TypeError) as exc:
            ap.exit(2, f"error: {p}: not a readable metrics.json ({type(exc).__name__}: {exc})\n")
    print(ndcg_table(docs[0]))
    if len(docs) == 2:
        d = differences(*docs)
        print(f"\nrows {d['rows'][0]} vs {d['rows'][1]}; values differing: {len(d['values'])}; intervals differing: "
              f"{len(d['intervals'])}; rows in one run only: {len(d['only_in_one'])}; same split: {d['same_split']}")
        for k, x, y in d["values"][:40]:
            print(f"  {'/'.join(map(str, k))}: {x!r} vs {y!r}")
        return 0 if not (d["values"] or d["intervals"] or d["only_in_one"]) and d["same_split"] else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
