"""coldrec feature repository: declarations only (entities, sources, feature views, services).

Nothing here computes anything. The Parquet tables these sources read are written by
``coldrec.feature_store.compute`` (``coldrec features build``); their directory comes from
``$COLDREC_FEATURES_DATA`` (set by ``coldrec.feature_store.store`` when it applies a repo copy),
else ``../data/features/online-retail`` beside this checkout. Feast records the resolved,
absolute path in the registry at ``feast apply`` time.

Timestamps are point-in-time: a ``user_profile`` row stamped t summarises that user's events
with timestamp <= t; an ``item_popularity`` row stamped midnight D counts events before D; each
user and item also has a row at 1970-01-02 holding its "nothing yet" values.
"""
import os
from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64, Int64, String, UnixTimestamp

DATA = Path(
    os.environ.get("COLDREC_FEATURES_DATA")
    or Path(__file__).resolve().parent.parent / "data" / "features" / "online-retail"
).resolve()

# --- entities -------------------------------------------------------------------------------
user = Entity(name="user", join_keys=["user_id"], value_type=ValueType.STRING, description="A shopper (canonical user_id).")
item = Entity(name="item", join_keys=["item_id"], value_type=ValueType.STRING, description="A catalogue item (canonical item_id).")

# --- data sources ---------------------------------------------------------------------------
user_profile_source = FileSource(
    name="user_profile_source",
    path=str(DATA / "user_profile.parquet"),
    timestamp_field="event_timestamp",
    description="One row per (user, event time): the profile as of that instant.",
)
# Live path: the serving feedback API pushes a user's updated profile row here (online store).
user_profile_push = PushSource(name="user_profile_push", batch_source=user_profile_source)

item_popularity_source = FileSource(
    name="item_popularity_source",
    path=str(DATA / "item_popularity.parquet"),
    timestamp_field="event_timestamp",
    description="Per item, a row at each midnight where its trailing counts change.",
)
item_attributes_source = FileSource(
    name="item_attributes_source",
    path=str(DATA / "item_attributes.parquet"),
    timestamp_field="event_timestamp",
    description="Catalogue attributes: static, stamped 1970-01-02 (known before any event).",
)

# --- feature views --------------------------------------------------------------------------
user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    ttl=timedelta(0),  # a profile never expires
    source=user_profile_push,
    schema=[
        # list features are JSON text (see coldrec.feature_store.user_state.LIST_FIELDS for why)
        Field(name="recent_item_ids", dtype=String, description="JSON list, most recent first."),
        Field(name="recent_event_types", dtype=String, description="JSON list: event type of each recent item."),
        Field(name="recent_timestamps", dtype=String, description="JSON list: ISO-8601 UTC time of each recent item."),
        Field(name="recent_queries", dtype=String, description="JSON list: search queries, most recent first."),
        Field(name="n_events", dtype=Int64),
        Field(name="n_view", dtype=Int64),
        Field(name="n_click", dtype=Int64),
        Field(name="n_add_to_cart", dtype=Int64),
        Field(name="n_purchase", dtype=Int64),
        Field(name="n_search", dtype=Int64),
        Field(name="n_rate", dtype=Int64),
        Field(name="top_categories", dtype=String, description="JSON list: the user's item categories, most frequent first."),
        Field(name="top_category_counts", dtype=String, description="JSON list of ints, one per top category."),
        Field(name="price_band_counts", dtype=String, description="JSON list of ints: events per catalogue price band, cheapest first."),
        Field(name="first_seen", dtype=UnixTimestamp),
        Field(name="last_seen", dtype=UnixTimestamp),
    ],
    online=True,
    description="What a user did, as of each of their events; updated live by pushes.",
)

item_popularity = FeatureView(
    name="item_popularity",
    entities=[item],
    ttl=timedelta(0),
    source=item_popularity_source,
    schema=[
        Field(name="events_7d", dtype=Int64, description="Events on the item in the 7 days before the stamp."),
        Field(name="events_30d", dtype=Int64),
        Field(name="events_total", dtype=Int64),
        Field(name="item_first_seen", dtype=UnixTimestamp, description="Time of the item's first event."),
    ],
    online=True,
    description="Trailing popularity, daily point-in-time snapshots.",
)

item_attributes = FeatureView(
    name="item_attributes",
    entities=[item],
    ttl=timedelta(0),
    source=item_attributes_source,
    schema=[
        Field(name="title", dtype=String),
        Field(name="description", dtype=String),
        Field(name="category", dtype=String),
        Field(name="brand", dtype=String),
        Field(name="price", dtype=Float64),
        Field(name="price_band", dtype=Int64, description="Catalogue price band, 0 = cheapest; -1 = no price."),
    ],
    online=True,
    description="Catalogue fields for filters and display.",
)

# --- feature services -----------------------------------------------------------------------
user_profile_service = FeatureService(
    name="user_profile_service", features=[user_profile], description="Serving: a known user's profile."
)
item_service = FeatureService(
    name="item_service", features=[item_attributes, item_popularity], description="Serving: item filters and display."
)
training_service = FeatureService(
    name="training_service",
    features=[user_profile, item_popularity, item_attributes],
    description="Training rows (user_id, item_id, event_timestamp) via get_historical_features.",
)
