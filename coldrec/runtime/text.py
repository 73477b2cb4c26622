"""An item's text as the encoder reads it (``encoder.item_template`` filled from its columns).

In the runtime because serving encodes new or changed catalogue items the same way fit time did.
"""
from __future__ import annotations

import pandas as pd


def item_texts(items: pd.DataFrame, template: str, max_chars: int) -> list[str]:
    """Fill the template per item; empty fields and their separators disappear."""
    fields = [f.split("}")[0] for f in template.split("{")[1:]]
    cols: dict[str, pd.Series | None] = {f: items[f].astype(object).where(items[f].notna(), "").astype(str) if f in items.columns else None
            for f in fields}
    out = []
    for i in range(len(items)):
        parts = []
        for piece in template.split("{")[1:]:
            name, sep = piece.split("}", 1)
            col = cols[name]
            val = col.iat[i].strip() if col is not None else ""
            if val:
                parts.append(val + sep)
        text = "".join(parts).strip().rstrip(".").strip()
        out.append(text[:max_chars] or str(items["item_id"].iat[i]))
    return out
