"""Keyed pseudonymisation of user ids at ingestion.

With `--pseudonymize-users`, every user id is replaced by an HMAC-SHA256 of it
under a secret key before validation, so no raw user id reaches any artefact
(examples, vocabularies, rejects files, reports) or log. The same key maps the
same id to the same pseudonym, so later runs and serving requests line up; the
key itself is never written anywhere by this package.
"""

from __future__ import annotations

import hashlib
import hmac

import pandas as pd

PREFIX = "p_"
DIGEST_CHARS = 20  # 80 bits: collisions are negligible below billions of users


def pseudonym(user_id: str, key: bytes) -> str:
    """The pseudonym of one id ("" stays "" so a missing id is still reported missing)."""
    if not user_id:
        return ""
    digest = hmac.new(key, user_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return PREFIX + digest[:DIGEST_CHARS]


def pseudonymize(ids: pd.Series, key: bytes) -> pd.Series:
    """Maps a column of ids (any dtype) to pseudonyms; hashes each distinct id once."""
    if not key:
        raise ValueError("`key` must be a non-empty secret. Received: an empty key")
    text = ids.astype(str).str.strip().where(ids.notna(), "")
    mapping = {value: pseudonym(value, key) for value in text.unique()}
    return text.map(mapping)
