import pytest
import torch

from nextchar import NextcharError
from nextchar.core.config import TrainConfig
from nextchar.text.data import Batches, batchify, encode, read_text, smallest_dtype, split_text
from nextchar.text.tokenizers import ByteTokenizer, CharTokenizer


def test_read_files_and_directories_in_sorted_order(tmp_path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "b.txt").write_text("second", encoding="utf-8")
    (tmp_path / "d" / "a.txt").write_text("첫째", encoding="utf-8")
    (tmp_path / "d" / ".hidden").write_text("never", encoding="utf-8")
    assert read_text(tmp_path / "d") == "첫째\nsecond"
    assert read_text([tmp_path / "d" / "b.txt"]) == "second"


def test_invalid_utf8_names_file_and_offset_or_is_replaced(tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good text \xff more")
    with pytest.raises(NextcharError, match=r"bad\.txt: byte 10 .*errors='replace'"):
        read_text(bad)
    assert read_text(bad, errors="replace") == "good text \ufffd more"
    assert read_text(bad, encoding="latin-1") == "good text ÿ more"


def test_missing_path_and_empty_directory(tmp_path) -> None:
    with pytest.raises(NextcharError, match="no such file"):
        read_text(tmp_path / "nope.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NextcharError, match="holds no files"):
        read_text(tmp_path / "empty")


def test_split_is_a_contiguous_tail() -> None:
    train, val = split_text("0123456789", 0.2)
    assert (train, val) == ("01234567", "89")
    # the fraction is checked once, where it is given
    with pytest.raises(NextcharError, match="val_fraction must be < 1"):
        TrainConfig(files=("x",), val_fraction=1.0)


def test_encode_uses_the_smallest_dtype() -> None:
    assert smallest_dtype(84) == torch.uint8
    assert smallest_dtype(1000) == torch.int16
    assert smallest_dtype(50_000) == torch.int32
    ids = encode(CharTokenizer.build("hello"), "hello")
    assert ids.dtype == torch.uint8 and ids.tolist() == [1, 0, 2, 2, 3]
    wide = CharTokenizer.build("".join(chr(0xAC00 + i) for i in range(300)))
    assert encode(wide, "가각").dtype == torch.int16
    assert encode(ByteTokenizer(), "한").tolist() == [0xED, 0x95, 0x9C]


def test_streams_continue_across_windows() -> None:
    data = torch.arange(103)
    batches = Batches(data, batch_size=4, seq_len=5)
    streams = batchify(data, 4)
    assert streams.shape == (4, 25) and streams[1, 0] == 25
    x0, y0 = batches.get(0)
    x1, _ = batches.get(1)
    assert torch.equal(y0[:, :-1], x0[:, 1:])  # targets are inputs shifted by one
    assert torch.equal(x1[:, 0], x0[:, -1] + 1)  # each row continues where it stopped
    assert batches.windows_per_epoch == 4  # (25 - 1) // 5
    assert batches.starts_epoch(4) and not batches.starts_epoch(3)
    assert torch.equal(batches.get(4)[0], x0)


def test_random_windows_depend_only_on_seed_and_step() -> None:
    data = torch.arange(1000)
    a = Batches(data, 8, 16, mode="random", seed=3)
    b = Batches(data, 8, 16, mode="random", seed=3)
    assert torch.equal(a.get(7)[0], b.get(7)[0])
    assert not torch.equal(a.get(7)[0], a.get(8)[0])
    x, y = a.get(2)
    assert torch.equal(y[:, :-1], x[:, 1:]) and torch.equal(y[:, -1], x[:, -1] + 1)


def test_too_little_data_for_the_batch_shape() -> None:
    with pytest.raises(NextcharError, match="too few for batches of 4 x 64"):
        Batches(torch.arange(100), batch_size=4, seq_len=64)


def test_random_windows_take_any_63_bit_seed() -> None:
    data = torch.arange(200) % 7
    big = Batches(data, 4, 8, "random", seed=2**63 - 1)
    x, y = big.get(5)
    assert x.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1])
    small = Batches(data, 4, 8, "random", seed=3)  # small seeds cut the windows they always cut
    g = torch.Generator().manual_seed(3 * 1_000_003 + 5)
    starts = torch.randint(0, data.numel() - 8, (4,), generator=g)
    assert torch.equal(small.get(5)[0], torch.stack([data[s : s + 8] for s in starts.tolist()]))


def test_encoding_a_large_text_uses_the_narrow_type_throughout(monkeypatch) -> None:
    """Ids come out of the tokenizer already narrow (no int64 array of the whole text), and
    the vocabulary, the ids, the unknown count and the fingerprint made in blocks are what
    one pass gives."""
    import hashlib

    import numpy as np

    from nextchar.text import data
    from nextchar.text.tokenizers import base

    text = ("".join(chr(0xAC00 + i) for i in range(300)) + "ab\n") * 200  # 303 characters
    char = CharTokenizer.build(text)
    assert char.encode_array(text).dtype == np.int16
    assert ByteTokenizer().encode_array(text).dtype == np.uint8
    small = CharTokenizer.build("abc")
    assert small.encode_array("abcabc").dtype == np.uint8
    whole = char.encode_array(text)
    monkeypatch.setattr(base, "ENCODE_BLOCK", 7)  # many blocks
    monkeypatch.setattr(data, "ENCODE_BLOCK", 7)
    assert CharTokenizer.build(text).vocab == char.vocab
    assert np.array_equal(char.encode_array(text), whole)
    with pytest.raises(NextcharError, match=r"2 character\(s\) not in the vocabulary: 'y' .*, 'z'"):
        char.encode_array("ab" * 20 + "z" + "ab" * 5 + "yz")  # in the middle and last blocks
    assert char.count_unknown("ab" * 20 + "zz" + "a" * 9 + "y") == 3
    one_pass = hashlib.sha256(f"{text}\0{text[:50]}".encode()).hexdigest()
    assert data._fingerprint(text, text[:50]) == one_pass  # runs resume across versions
