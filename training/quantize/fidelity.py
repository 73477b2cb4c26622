"""How far the int8 encoder is from fp32: cosine per catalogue text, neighbour overlap, sizes.

Written as ``fidelity.json`` + ``fidelity.html`` next to the int8 model; the quantize stage
refuses to install an encoder whose mean cosine is below ``quantize.min_mean_cosine``.
"""
from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def file_size(path: Path) -> int:
    p = Path(path)
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.is_dir() else p.stat().st_size


def fidelity_report(fp32: np.ndarray, int8: np.ndarray, texts: Sequence[str], min_mean_cosine: float,
                    out_dir: str | Path | None = None, sizes: dict[str, int] | None = None,
                    extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Cosine(int8, fp32) per text, top-10 neighbour overlap, sizes; written as fidelity.json/.html."""
    a = fp32 / np.maximum(np.linalg.norm(fp32, axis=1, keepdims=True), 1e-12)
    b = int8 / np.maximum(np.linalg.norm(int8, axis=1, keepdims=True), 1e-12)
    cos = (a * b).sum(1)
    k = min(10, len(a) - 1)
    overlap = None
    if k >= 1:
        sample = np.arange(len(a)) if len(a) <= 2000 else np.random.default_rng(0).choice(len(a), 2000, replace=False)
        sa, sb = a[sample] @ a.T, b[sample] @ b.T
        sa[np.arange(len(sample)), sample] = sb[np.arange(len(sample)), sample] = -np.inf
        ta, tb = np.argpartition(-sa, k, 1)[:, :k], np.argpartition(-sb, k, 1)[:, :k]
        overlap = float(np.mean([len(set(x) & set(y)) / k for x, y in zip(ta, tb)]))
    worst = np.argsort(cos)[:10]
    rep: dict[str, Any] = {
        "n_texts": int(len(cos)),
        "mean_cosine": float(cos.mean()),
        "min_cosine": float(cos.min()),
        "p01_cosine": float(np.percentile(cos, 1)),
        "p50_cosine": float(np.median(cos)),
        "share_below_0_99": float((cos < 0.99).mean()),
        "neighbour_overlap@10": overlap,
        "min_mean_cosine": float(min_mean_cosine),
        "passed": bool(cos.mean() >= min_mean_cosine),
        "worst": [{"text": str(texts[i]), "cosine": float(cos[i])} for i in worst],
    }
    if sizes:
        rep["size_bytes"] = {k2: int(v) for k2, v in sizes.items()}
        if sizes.get("int8") and sizes.get("fp32"):
            rep["size_ratio"] = sizes["int8"] / sizes["fp32"]
    rep.update(extra or {})
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "fidelity.json").write_text(json.dumps(rep, indent=2, default=str), encoding="utf-8")
        (out / "fidelity.html").write_text(_html(rep, cos), encoding="utf-8")
    return rep


def _html(rep: dict[str, Any], cos: np.ndarray) -> str:
    e = html.escape
    rows: list[tuple[str, Any]] = [
        (k, rep[k]) for k in ("n_texts", "mean_cosine", "min_cosine", "p01_cosine", "p50_cosine", "share_below_0_99",
                              "neighbour_overlap@10", "size_ratio", "passed") if k in rep]
    rows += [(f"size {k} (MB)", v / 1e6) for k, v in rep.get("size_bytes", {}).items()]
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else e(str(v))  # noqa: E731
    table = "".join(f"<tr><th>{e(str(k))}</th><td>{fmt(v)}</td></tr>" for k, v in rows)
    edges = [-1.0, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 1.0001]
    counts = np.histogram(cos, bins=edges)[0]
    hist = "".join(f"<tr><td>[{lo:g}, {min(hi, 1):g})</td><td>{c}</td>"
                   f"<td><div style='background:#4a7;height:10px;width:{int(300 * c / max(counts.max(), 1))}px'></div></td></tr>"
                   for lo, hi, c in zip(edges[:-1], edges[1:], counts))
    worst = "".join(f"<tr><td>{r['cosine']:.4f}</td><td>{e(r['text'])}</td></tr>" for r in rep.get("worst", []))
    q = e(json.dumps(rep.get("quantization", {}), default=str))
    verdict = "passed" if rep.get("passed") else "FAILED"
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>int8 encoder fidelity</title>"
            f"<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style></head><body>"
            f"<h1>int8 encoder fidelity: {verdict}</h1><p>cosine(int8 vector, fp32 vector) per catalogue text; "
            f"gate: mean &ge; {rep.get('min_mean_cosine')}</p><table>{table}</table>"
            f"<h2>Distribution</h2><table>{hist}</table><h2>Lowest cosines</h2><table>{worst}</table>"
            f"<h2>Settings</h2><pre>{q}</pre></body></html>")
