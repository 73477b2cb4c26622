"""The HTTP API's request and response bodies (pydantic): every limit a client can hit is here.

Why strict models: BentoML turns a pydantic validation error into a 400 naming the field, so a
wrong type, an out-of-range ``k``, an unknown field or an oversized list never reaches the
engine (and never becomes a 500).
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

EventType = Literal["view", "click", "add_to_cart", "purchase", "search", "rate"]
Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MAX_RECENT = 100
MAX_EXCLUDE = 1000
MAX_K = 100


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecentItem(Strict):
    item_id: Id
    event_type: EventType = "view"


class Filters(Strict):
    categories: list[ShortText] = Field(default_factory=list, max_length=50)
    price_min: float | None = Field(None, ge=0, allow_inf_nan=False)
    price_max: float | None = Field(None, ge=0, allow_inf_nan=False)
    in_stock: bool = False

    @model_validator(mode="after")
    def _range(self) -> Filters:
        if self.price_min is not None and self.price_max is not None and self.price_min > self.price_max:
            raise ValueError(f"price_min ({self.price_min}) is above price_max ({self.price_max})")
        return self


class ShopperSignals(Strict):
    """What the app knows about the shopper; every part optional (nothing at all: the fallback)."""

    user_id: Id | None = None
    recent_items: list[RecentItem | Id] = Field(default_factory=list, max_length=MAX_RECENT,
                                                 description="oldest first; an id alone is a view")
    query: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    interests: list[ShortText] = Field(default_factory=list, max_length=20)
    attributes: dict[Annotated[str, StringConstraints(min_length=1, max_length=64)],
                     Annotated[str, StringConstraints(max_length=200)]] = Field(default_factory=dict, max_length=20)

    @field_validator("recent_items")
    @classmethod
    def _as_items(cls, v: list[RecentItem | str]) -> list[RecentItem | str]:
        return [RecentItem(item_id=x) if isinstance(x, str) else x for x in v]


class RecommendRequest(ShopperSignals):
    k: int = Field(10, ge=1, le=MAX_K)
    filters: Filters | None = None
    exclude: list[Id] = Field(default_factory=list, max_length=MAX_EXCLUDE)


class SearchRequest(Strict):
    """Catalogue search for people trying the recommender (the web page): every word of ``query``
    in the title, category or brand; an empty query lists the most popular items."""

    query: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] = ""
    k: int = Field(20, ge=1, le=MAX_K)


class SimilarRequest(Strict):
    item_id: Id
    k: int = Field(10, ge=1, le=MAX_K)
    filters: Filters | None = None


class FeedbackRequest(Strict):
    user_id: Id
    event_type: EventType
    item_id: Id | None = None
    query: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    recommendation_id: Annotated[str, StringConstraints(max_length=64)] | None = None

    @model_validator(mode="after")
    def _needs_item(self) -> FeedbackRequest:
        if self.event_type != "search" and not self.item_id:
            raise ValueError(f"a {self.event_type} event needs an item_id")
        if self.event_type == "search" and not (self.query or self.item_id):
            raise ValueError("a search event needs a query")
        return self


class CatalogueItem(Strict):
    item_id: Id
    title: ShortText
    description: Annotated[str, StringConstraints(max_length=2000)] | None = None
    category: Annotated[str, StringConstraints(max_length=200)] | None = None
    brand: Annotated[str, StringConstraints(max_length=200)] | None = None
    price: float | None = Field(None, ge=0, allow_inf_nan=False)
    in_stock: bool = True


class UpsertItems(Strict):
    items: list[CatalogueItem] = Field(min_length=1, max_length=500)


class DeleteItems(Strict):
    item_ids: list[Id] = Field(min_length=1, max_length=1000)
