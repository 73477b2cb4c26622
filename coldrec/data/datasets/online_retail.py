"""UCI Online Retail -> canonical tables.

Cleaning rules, applied in this order; the count each removes is printed and stored in the
dataset's manifest:

1. ``cancelled_invoice``   invoices starting with ``C`` are cancellations/returns. The
   canonical vocabulary has no return event, so they are dropped (the original purchase stays:
   the shopper did choose the item).
2. ``non_product_code``    StockCodes that are not products: postage, fees, manual adjustments,
   samples, gift vouchers (``POST``, ``DOT``, ``M``, ``D``, ``C2``, ``BANK CHARGES``,
   ``AMAZONFEE``, ``CRUK``, ``PADS``, ``S``, ``B``, ``gift_0001_*``, ``DCGS*`` ...). A product code
   is five digits optionally followed by letters (``85123A``).
3. ``non_positive_quantity`` remaining rows with quantity <= 0 (stock write-offs, damages).
4. ``non_positive_price``  remaining rows with unit price <= 0 (free adjustments).
5. ``no_customer``         rows without CustomerID: dropped by default; with
   ``online_retail.keep_guests: true`` each such invoice becomes one guest user
   ``guest-<InvoiceNo>`` (a single-session shopper, a realistic cold-start case).
6. ``duplicate_row``       byte-identical rows (same invoice, code, quantity, time, price).
7. ``merged_invoice_line`` several lines of one item in one invoice become one purchase event
   whose value is the summed quantity.

Items are the product codes that survive rules 1-4 (sold at least once), titled by their most
frequent description; price is the median unit price. ``InvoiceDate`` carries no time zone
(the shop is in the UK); it is read as UTC. Users carry their most frequent country.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from coldrec.data.dataset import Dataset
from coldrec.core.errors import DataError
from coldrec.data.contract import canonical_events, canonical_items, canonical_users, read_table

PRODUCT_CODE = r"\d{5}[A-Za-z]*"
RAW_COLUMNS = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]


def _mode(s: pd.Series) -> Any:
    s = s.dropna()
    return s.value_counts().index[0] if len(s) else None


def build(raw_dir: Path, params: dict[str, Any] | None = None) -> Dataset:
    params = params or {}
    keep_guests = bool(params.get("keep_guests", False))
    path = Path(raw_dir) / "online_retail.csv.xz"
    df = read_table(path)
    missing = [c for c in RAW_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} of the UCI Online Retail layout")
    df = df.copy()
    for col in ("InvoiceNo", "StockCode", "Description", "Country"):
        df[col] = df[col].str.strip()
    df["Quantity"] = pd.to_numeric(df["Quantity"], errors="coerce")
    df["UnitPrice"] = pd.to_numeric(df["UnitPrice"], errors="coerce")
    # '17850.0' -> '17850': ids are integers written as float text
    df["CustomerID"] = pd.to_numeric(df["CustomerID"], errors="coerce").astype("Int64").astype("string")

    rules: list[dict[str, Any]] = [{"rule": "raw_rows", "rows": int(len(df))}]

    def drop(mask: pd.Series, rule: str, why: str) -> None:
        nonlocal df
        rules.append({"rule": rule, "removed": int(mask.sum()), "why": why})
        df = df[~mask]

    drop(df["InvoiceNo"].str.startswith("C"), "cancelled_invoice", "cancellations/returns (no return event type)")
    drop(~df["StockCode"].str.fullmatch(PRODUCT_CODE).fillna(False).astype(bool), "non_product_code",
         "postage, fees, adjustments, vouchers")
    drop(~(df["Quantity"] > 0), "non_positive_quantity", "write-offs and damages")
    drop(~(df["UnitPrice"] > 0), "non_positive_price", "free adjustments")
    sold = df  # the catalogue: products sold at least once
    no_customer = df["CustomerID"].isna()
    if keep_guests:
        df = df.copy()
        df.loc[no_customer, "CustomerID"] = "guest-" + df.loc[no_customer, "InvoiceNo"]
        rules.append({"rule": "no_customer", "removed": 0, "why": f"{int(no_customer.sum())} rows kept as guest invoices"})
    else:
        drop(no_customer, "no_customer", "no CustomerID (set online_retail.keep_guests to keep as guest sessions)")
    drop(df.duplicated(subset=RAW_COLUMNS), "duplicate_row", "identical invoice lines")

    events = (
        df.groupby(["InvoiceNo", "StockCode"], sort=False)
        .agg(user_id=("CustomerID", "first"), timestamp=("InvoiceDate", "first"), value=("Quantity", "sum"))
        .reset_index()
    )
    rules.append({"rule": "merged_invoice_line", "removed": int(len(df) - len(events)),
                  "why": "lines of one item in one invoice summed into one purchase"})
    events = events.rename(columns={"StockCode": "item_id"})
    events["event_type"] = "purchase"
    events["query"] = None
    events = events[["user_id", "item_id", "event_type", "timestamp", "value", "query"]]
    events.attrs.update(source=str(path), is_csv=False)
    events = canonical_events(events)
    rules.append({"rule": "events", "rows": int(len(events))})

    items = (
        sold.groupby("StockCode")
        .agg(title=("Description", _mode), price=("UnitPrice", "median"))
        .reset_index()
        .rename(columns={"StockCode": "item_id"})
    )
    items["title"] = items["title"].fillna("item " + items["item_id"])
    items.attrs.update(source=str(path), is_csv=False)
    items = canonical_items(items)

    users = df.groupby("CustomerID").agg(country=("Country", _mode)).reset_index().rename(columns={"CustomerID": "user_id"})
    users.attrs.update(source=str(path), is_csv=False)
    users = canonical_users(users)
    return Dataset(name="online-retail", events=events, items=items, users=users, report={"rules": rules})
