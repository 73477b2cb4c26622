"""Each documented online-retail cleaning rule removes exactly what it says, on a tiny raw file."""
from __future__ import annotations

import lzma

from coldrec.data.datasets import online_retail

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
ROWS = [
    "536365,85123A,WHITE HANGING HEART,6,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",  # kept
    "536365,85123A,WHITE HANGING HEART,2,2010-12-01 08:26:00,2.55,17850.0,United Kingdom",  # merged (same invoice+item)
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",  # kept
    "536365,71053,WHITE METAL LANTERN,6,2010-12-01 08:26:00,3.39,17850.0,United Kingdom",  # duplicate row
    "C536379,71053,WHITE METAL LANTERN,-1,2010-12-01 09:41:00,3.39,14527.0,United Kingdom",  # cancelled
    "536370,POST,POSTAGE,3,2010-12-01 08:45:00,18.0,12583.0,France",  # non-product
    "536370,BANK CHARGES,Bank Charges,1,2010-12-01 08:45:00,15.0,12583.0,France",  # non-product
    "536371,22752,SET 7 BABUSHKA NESTING BOXES,-2,2010-12-01 09:00:00,7.65,13047.0,United Kingdom",  # qty <= 0
    "536372,22752,SET 7 BABUSHKA NESTING BOXES,2,2010-12-01 09:01:00,0.0,13047.0,United Kingdom",  # price <= 0
    "536373,22752,SET 7 BABUSHKA NESTING BOXES,2,2010-12-01 09:02:00,7.65,,United Kingdom",  # no customer
    "536374,22752,SET/7 BABUSHKA BOXES,1,2010-12-02 10:00:00,8.65,13047.0,France",  # kept; minority title
    "536375,22752,SET 7 BABUSHKA NESTING BOXES,1,2010-12-03 10:00:00,7.65,13047.0,France",  # kept
]


def _raw(tmp_path):
    d = tmp_path / "online-retail"
    d.mkdir()
    with lzma.open(d / "online_retail.csv.xz", "wt") as fh:
        fh.write(HEADER + "\n".join(ROWS) + "\n")
    return d


def test_rules_remove_what_they_say(tmp_path):
    ds = online_retail.build(_raw(tmp_path))
    removed = {r["rule"]: r.get("removed") for r in ds.report["rules"]}
    assert removed == {"raw_rows": None, "cancelled_invoice": 1, "non_product_code": 2, "non_positive_quantity": 1,
                       "non_positive_price": 1, "no_customer": 1, "duplicate_row": 1, "merged_invoice_line": 1,
                       "events": None}
    ev = ds.events
    assert sorted(zip(ev["user_id"], ev["item_id"], ev["value"])) == [
        ("13047", "22752", 1.0), ("13047", "22752", 1.0), ("17850", "71053", 6.0), ("17850", "85123A", 8.0)]
    assert set(ev["event_type"]) == {"purchase"}
    items = ds.items.set_index("item_id")
    assert sorted(items.index) == ["22752", "71053", "85123A"]  # sold products only, codes as written
    assert items.loc["22752", "title"] == "SET 7 BABUSHKA NESTING BOXES"  # most frequent description
    assert dict(zip(ds.users["user_id"], ds.users["country"])) == {"13047": "France", "17850": "United Kingdom"}


def test_guest_invoices_kept_when_asked(tmp_path):
    ds = online_retail.build(_raw(tmp_path), {"keep_guests": True})
    assert "guest-536373" in set(ds.events["user_id"])
    assert next(r for r in ds.report["rules"] if r["rule"] == "no_customer")["removed"] == 0
