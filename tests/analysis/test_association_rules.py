"""Association rules and sequential transitions against hand-computed values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.analysis.frames import make_events
from trainer.analysis.association_rules import association_rules, sequential_transitions
from trainer.analysis.user_sequences import UserSequences

# Four users' item sets: u1 {A, B, C} (A twice), u2 {A, B}, u3 {A, C}, u4 {B}.
# n(A) = 3, n(B) = 3, n(C) = 2, U = 4; n(A,B) = 2, n(A,C) = 2, n(B,C) = 1.
FOUR_USERS = [
    ("u1", "A", 10),
    ("u1", "B", 20),
    ("u1", "C", 30),
    ("u1", "A", 40),
    ("u2", "A", 10),
    ("u2", "B", 11),
    ("u3", "C", 5),
    ("u3", "A", 6),
    ("u4", "B", 1),
]


def _rules(rows, **kwargs):
    return association_rules(UserSequences.from_events(make_events(rows)), **kwargs)


def test_rules_four_users_by_hand():
    rules = _rules(FOUR_USERS, min_support_users=1, top_k=100)
    # (A, B, n(A,B), n(A), n(B), support, confidence, lift), by lift, confidence, count, ids:
    #   C->A: 2/4, 2/2 = 1,   1   / (3/4) = 4/3
    #   A->C: 2/4, 2/3,      (2/3)/(2/4) = 4/3
    #   A->B: 2/4, 2/3,      (2/3)/(3/4) = 8/9   (tie with B->A broken by id)
    #   B->A: 2/4, 2/3,      8/9
    #   C->B: 1/4, 1/2,      (1/2)/(3/4) = 2/3
    #   B->C: 1/4, 1/3,      (1/3)/(2/4) = 2/3
    expected = [
        ("C", "A", 2, 2, 3, 0.5, 1.0, 4 / 3),
        ("A", "C", 2, 3, 2, 0.5, 2 / 3, 4 / 3),
        ("A", "B", 2, 3, 3, 0.5, 2 / 3, 8 / 9),
        ("B", "A", 2, 3, 3, 0.5, 2 / 3, 8 / 9),
        ("C", "B", 1, 2, 3, 0.25, 0.5, 2 / 3),
        ("B", "C", 1, 3, 2, 0.25, 1 / 3, 2 / 3),
    ]
    columns = ["antecedent", "consequent", "pair_users", "antecedent_users", "consequent_users"]
    columns += ["support", "confidence", "lift"]
    got = list(rules[columns].itertuples(index=False, name=None))
    assert [g[:5] for g in got] == [e[:5] for e in expected]
    np.testing.assert_allclose([g[5:] for g in got], [e[5:] for e in expected])


def test_min_support_drops_rare_pairs():
    # n(B,C) = 1 < 2: both B/C rules go; at 3 no pair is left.
    rules = _rules(FOUR_USERS, min_support_users=2, top_k=100)
    assert sorted(zip(rules["antecedent"], rules["consequent"])) == [("A", "B"), ("A", "C"), ("B", "A"), ("C", "A")]
    assert _rules(FOUR_USERS, min_support_users=3).empty


def test_top_k_and_max_items():
    assert len(_rules(FOUR_USERS, min_support_users=1, top_k=3)) == 3
    # The 2 items with most users are A and B (3 users each); C (2 users) is left out.
    rules = _rules(FOUR_USERS, min_support_users=1, max_items=2, top_k=100)
    assert list(zip(rules["antecedent"], rules["consequent"])) == [("A", "B"), ("B", "A")]


@pytest.mark.parametrize("name,value", [("min_support_users", 0), ("max_items", 1), ("top_k", 0)])
def test_rules_reject_bad_arguments(name, value):
    with pytest.raises(ValueError, match=name):
        _rules(FOUR_USERS, **{name: value})


def _reference_rules(rows, min_support):
    """Plain-Python rules from per-user sets: {(a, b): (count, support, confidence, lift)}."""
    baskets = {}
    for user, item, _ in rows:
        baskets.setdefault(user, set()).add(item)
    num_users = len(baskets)
    users_of = {}
    for user, items in baskets.items():
        for item in items:
            users_of.setdefault(item, set()).add(user)
    result = {}
    for a, b in itertools.permutations(sorted(users_of), 2):
        both = len(users_of[a] & users_of[b])
        if both >= min_support:
            confidence = both / len(users_of[a])
            result[(a, b)] = (both, both / num_users, confidence, confidence / (len(users_of[b]) / num_users))
    return result


def test_rules_match_plain_python_reference():
    rng = np.random.default_rng(3)
    rows = [(f"u{rng.integers(30)}", f"i{rng.integers(12)}", int(rng.integers(1000))) for _ in range(300)]
    expected = _reference_rules(rows, min_support=4)
    rules = _rules(rows, min_support_users=4, top_k=10_000)
    assert len(rules) == len(expected) > 0
    for row in rules.itertuples(index=False):
        count, support, confidence, lift = expected[(row.antecedent, row.consequent)]
        assert row.pair_users == count
        assert row.support == pytest.approx(support)
        assert row.confidence == pytest.approx(confidence)
        assert row.lift == pytest.approx(lift)
    assert np.all(np.diff(rules["lift"].to_numpy()) <= 1e-12)  # sorted by lift


# Transitions in time order: u1 A B A B; u2 A B; u3 A A C (rows deliberately out of order).
SEQUENCES = [
    ("u1", "B", 4),
    ("u1", "A", 1),
    ("u3", "C", 3),
    ("u1", "B", 2),
    ("u2", "A", 7),
    ("u1", "A", 3),
    ("u3", "A", 1),
    ("u2", "B", 8),
    ("u3", "A", 2),
]
# Out of A: u1 A->B twice, u2 A->B, u3 A->A and A->C = 5; out of B: u1 B->A = 1.


def _transitions(rows, **kwargs):
    return sequential_transitions(UserSequences.from_events(make_events(rows)), **kwargs)


def test_transitions_by_hand():
    got = _transitions(SEQUENCES, min_support_users=1)
    columns = ["source", "target", "count", "users", "source_transitions"]
    assert list(got[columns].itertuples(index=False, name=None)) == [
        ("A", "B", 3, 2, 5),
        ("B", "A", 1, 1, 1),
        ("A", "C", 1, 1, 5),
    ]
    np.testing.assert_allclose(got["confidence"], [3 / 5, 1.0, 1 / 5])


def test_transitions_min_support_and_self():
    frequent = _transitions(SEQUENCES, min_support_users=2)
    assert list(zip(frequent["source"], frequent["target"])) == [("A", "B")]
    with_self = _transitions(SEQUENCES, min_support_users=1, include_self=True)
    assert list(zip(with_self["source"], with_self["target"])) == [("A", "B"), ("B", "A"), ("A", "A"), ("A", "C")]


def test_same_second_events_follow_read_order():
    # Same timestamp: read order (row order) decides A then B, not the ids.
    got = _transitions([("u1", "B", 5), ("u1", "A", 5)], min_support_users=1)
    assert list(zip(got["source"], got["target"])) == [("B", "A")]
