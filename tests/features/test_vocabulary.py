import tensorflow as tf

from trainer.features.vocabulary import Vocabulary, lookup_layer


def test_order_counts_and_round_trip(tmp_path):
    vocab = Vocabulary.from_values("item_id", ["b", "a", "b", "c", "a", "b", "", "d"], min_count=1)
    # b x3, a x2, then c and d x1 sorted by token; "" never enters.
    assert vocab.tokens == ("b", "a", "c", "d")
    assert vocab.counts == (3, 2, 1, 1)
    entry = vocab.write(str(tmp_path / "vocab"))
    assert entry["size"] == 4 and entry["total_count"] == 7
    assert Vocabulary.read(str(tmp_path / "vocab"), "item_id") == vocab
    assert (tmp_path / "vocab" / "item_id.txt").read_text() == "b\na\nc\nd\n"


def test_min_count_and_max_size():
    vocab = Vocabulary.from_values("x", ["a"] * 3 + ["b"] * 2 + ["c"], min_count=2)
    assert vocab.tokens == ("a", "b")
    assert Vocabulary.from_values("x", ["a"] * 3 + ["b"] * 2 + ["c"], max_size=1).tokens == ("a",)


def test_lookup_maps_padding_oov_and_known():
    vocab = Vocabulary.from_values("item_id", ["x", "y", "y"])
    layer = lookup_layer(vocab, num_oov_indices=1)
    ids = layer(tf.constant([["", "y", "x", "never-seen"]])).numpy().tolist()
    # 0 = padding, 1 = OOV, then y (most frequent) = 2, x = 3.
    assert ids == [[0, 2, 3, 1]]
