"""The item catalogue as the model sees it: ids, raw attributes and vocabularies.

Catalogue order (the order of `items.tfrecord.gz`) is the order of every
full-catalogue score vector the model and the evaluators produce.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from trainer.data import dataset
from trainer.features.vocabulary import Vocabulary


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """All known items, in catalogue order ([N] arrays).

    ids/texts/categories: object (str; categories "|"-joined, "" absent);
    latitudes/longitudes/prices: float32 (NaN unknown); train_counts: int64
    (training-period events; 0 = a cold item).
    """

    ids: np.ndarray
    texts: np.ndarray
    categories: np.ndarray
    latitudes: np.ndarray
    longitudes: np.ndarray
    prices: np.ndarray
    train_counts: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def load(cls, data_dir: str) -> "Catalogue":
        columns: dict[str, list[Any]] = {k: [] for k in dataset.ITEM_FEATURES}
        for batch in dataset.make_item_dataset(data_dir, batch_size=4096):
            for name, values in batch.items():
                columns[name].append(values.numpy())
        merged = {k: np.concatenate(v) if v else np.array([]) for k, v in columns.items()}
        decode = lambda a: np.array([v.decode("utf-8") for v in a], dtype=object)  # noqa: E731
        return cls(
            ids=decode(merged["item_id"]),
            texts=decode(merged["text"]),
            categories=decode(merged["category"]),
            latitudes=merged["latitude"].astype(np.float32),
            longitudes=merged["longitude"].astype(np.float32),
            prices=merged["price"].astype(np.float32),
            train_counts=merged["train_count"].astype(np.int64),
        )

    def features(self) -> dict[str, np.ndarray]:
        """Raw item features as the candidate tower takes them (without text vectors)."""
        return {
            "item_id": self.ids.astype(object),
            "category": self.categories.astype(object),
            "latitude": self.latitudes,
            "longitude": self.longitudes,
            "price": self.prices,
        }

    def index(self) -> dict[str, int]:
        return {item: i for i, item in enumerate(self.ids.tolist())}


@dataclasses.dataclass(frozen=True)
class Vocabularies:
    """The training-period vocabularies the towers look ids up in."""

    item_id: Vocabulary
    user_id: Vocabulary
    event_type: Vocabulary
    category: Vocabulary
    user_categorical: dict[str, Vocabulary]

    @classmethod
    def load(cls, data_dir: str, manifest: dict[str, Any]) -> "Vocabularies":
        vocab_dir = os.path.join(data_dir, "vocab")
        categorical = {
            name: Vocabulary.read(vocab_dir, f"user_{name}")
            for name in manifest["user_attributes"]["categorical"]
            if f"user_{name}" in manifest["vocabularies"]
        }
        return cls(
            item_id=Vocabulary.read(vocab_dir, "item_id"),
            user_id=Vocabulary.read(vocab_dir, "user_id"),
            event_type=Vocabulary.read(vocab_dir, "event_type"),
            category=Vocabulary.read(vocab_dir, "category"),
            user_categorical=categorical,
        )
