"""Item association rules A -> B and sequential transitions A then B.

Rules come from per-user item sets: with U users, n(A) the users who had A and
n(A, B) the users who had both,

  support(A -> B)    = n(A, B) / U
  confidence(A -> B) = n(A, B) / n(A)          = P(B | A)
  lift(A -> B)       = confidence / (n(B) / U) = P(B | A) / P(B)

A pair needs n(A, B) >= `min_support_users` so that pairs seen by one or two
users (lift is huge for them) do not fill the table. Co-occurrence counts are
X^T X for the binary user x item incidence X, restricted to the `max_items`
items with the most users to bound cost (at most max_items^2 pairs).

Transitions count A immediately followed by B in a user's time-ordered events;
confidence(A then B) = count(A then B) / count(A then anything), self-transitions
included in that denominator.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import scipy.sparse

from trainer.analysis.user_sequences import UserSequences

logger = logging.getLogger(__name__)

RULE_COLUMNS = (
    "antecedent",
    "consequent",
    "antecedent_users",
    "consequent_users",
    "pair_users",
    "support",
    "confidence",
    "lift",
)
TRANSITION_COLUMNS = ("source", "target", "count", "users", "source_transitions", "confidence")


def _check_positive(name: str, value: int, minimum: int = 1) -> None:
    if int(value) < minimum:
        raise ValueError(f"`{name}` must be >= {minimum}. Received: {name}={value}")


def _top_rows(primary: np.ndarray, sort_keys: tuple[np.ndarray, ...], top_k: int) -> np.ndarray:
    """Indices of the `top_k` rows by `sort_keys` (np.lexsort order, last key first).

    `primary` is the descending main key; rows below the k-th largest value are
    dropped first so that the full lexsort runs on a few rows, not millions.
    """
    if primary.size > top_k:
        threshold = np.partition(primary, primary.size - top_k)[primary.size - top_k]
        keep = np.flatnonzero(primary >= threshold)
    else:
        keep = np.arange(primary.size)
    order = np.lexsort(tuple(key[keep] for key in sort_keys))
    return keep[order[:top_k]]


def association_rules(
    sequences: UserSequences,
    *,
    min_support_users: int = 5,
    max_items: int = 3000,
    top_k: int = 20,
) -> pd.DataFrame:
    """The `top_k` rules A -> B with the highest lift.

    Args:
      sequences: the events; only which users had which items matters here.
      min_support_users: a rule needs at least this many users with both items.
      max_items: only the items with the most users (ties by id) take part.
      top_k: rows returned.

    Returns:
      Columns `RULE_COLUMNS`: item ids, user counts n(A), n(B), n(A, B), and
      support, confidence and lift; sorted by lift, then confidence, then
      n(A, B) (all descending), then ids. Both directions of a pair appear.
    """
    _check_positive("min_support_users", min_support_users)
    _check_positive("max_items", max_items, minimum=2)
    _check_positive("top_k", top_k)
    num_users, num_items = sequences.num_users, sequences.num_items
    pairs = np.unique(sequences.user_item_keys())  # each (user, item) once
    users, items = np.divmod(pairs, np.int64(max(num_items, 1)))
    item_users = np.bincount(items, minlength=num_items).astype(np.int64)

    # Items with fewer users than the minimum support cannot be in any rule.
    eligible = np.flatnonzero(item_users >= min_support_users)
    chosen = eligible[np.lexsort((eligible, -item_users[eligible]))][:max_items]  # [M] item codes
    column = np.full(num_items, -1, dtype=np.int64)
    column[chosen] = np.arange(chosen.size)
    in_chosen = column[items] >= 0
    incidence = scipy.sparse.csr_matrix(
        (np.ones(int(in_chosen.sum()), dtype=np.int64), (users[in_chosen], column[items[in_chosen]])),
        shape=(num_users, chosen.size),
    )  # [U, M] binary
    co_users = (incidence.T @ incidence).tocoo()  # [M, M] users with both items
    keep = (co_users.row != co_users.col) & (co_users.data >= min_support_users)
    a = chosen[co_users.row[keep]]
    b = chosen[co_users.col[keep]]
    both = co_users.data[keep].astype(np.int64)
    logger.info(
        "Association rules: %d items of %d considered, %d rules with >= %d users.",
        chosen.size,
        num_items,
        both.size,
        min_support_users,
    )

    n_a = item_users[a]
    n_b = item_users[b]
    confidence = both / n_a
    lift = both * float(num_users) / (n_a.astype(np.float64) * n_b)
    top = _top_rows(lift, (b, a, -both, -confidence, -lift), top_k)
    return pd.DataFrame(
        {
            "antecedent": sequences.item_ids[a[top]].astype(str),
            "consequent": sequences.item_ids[b[top]].astype(str),
            "antecedent_users": n_a[top],
            "consequent_users": n_b[top],
            "pair_users": both[top],
            "support": both[top] / float(num_users),
            "confidence": confidence[top],
            "lift": lift[top],
        },
        columns=list(RULE_COLUMNS),
    )


def sequential_transitions(
    sequences: UserSequences,
    *,
    min_support_users: int = 5,
    top_k: int = 20,
    include_self: bool = False,
) -> pd.DataFrame:
    """The `top_k` most frequent transitions A -> B between consecutive events of a user.

    Args:
      sequences: time-ordered events.
      min_support_users: a transition needs at least this many distinct users.
      top_k: rows returned.
      include_self: keep A -> A (an immediate repeat); off by default because
        repeats have their own section and would fill the table on check-ins.

    Returns:
      Columns `TRANSITION_COLUMNS`: item ids, `count` of A -> B, distinct `users`
      with it, `source_transitions` = all transitions out of A, and confidence
      = count / source_transitions; sorted by count, then confidence (both
      descending), then ids.
    """
    _check_positive("min_support_users", min_support_users)
    _check_positive("top_k", top_k)
    num_items = np.int64(max(sequences.num_items, 1))
    continues = sequences.continues_user()
    source = sequences.item_codes[:-1][continues]
    target = sequences.item_codes[1:][continues]
    user = sequences.user_codes[1:][continues]
    out_of_source = np.bincount(source, minlength=sequences.num_items).astype(np.int64)
    if not include_self:
        different = source != target
        source, target, user = source[different], target[different], user[different]
    pair = source * num_items + target
    frame = pd.DataFrame({"pair": pair, "user": user})
    counts = frame["pair"].value_counts(sort=False)
    users = frame.drop_duplicates()["pair"].value_counts(sort=False).reindex(counts.index)
    pair_keys = counts.index.to_numpy(dtype=np.int64)
    count = counts.to_numpy(dtype=np.int64)
    user_count = users.to_numpy(dtype=np.int64)
    enough = user_count >= min_support_users
    pair_keys, count, user_count = pair_keys[enough], count[enough], user_count[enough]
    a, b = np.divmod(pair_keys, num_items)
    confidence = count / out_of_source[a]
    top = _top_rows(count, (b, a, -confidence, -count), top_k)
    return pd.DataFrame(
        {
            "source": sequences.item_ids[a[top]].astype(str),
            "target": sequences.item_ids[b[top]].astype(str),
            "count": count[top],
            "users": user_count[top],
            "source_transitions": out_of_source[a[top]],
            "confidence": confidence[top],
        },
        columns=list(TRANSITION_COLUMNS),
    )
