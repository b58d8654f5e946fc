import json
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nextchar import NextcharError
from nextchar.text.tokenizers import UNK, CharTokenizer, tokenizer_from_dict

TEXTS = [
    " seoul is the capital of south korea",
    "서울은 대한민국의 수도이다.\n한국어 텍스트!",
    "emoji 👩‍👩‍👧 and flags 🇰🇷 ok",
    "combining: cafe\u0301 vs café, Å vs A\u030a",
]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("normalization", ["nfc", "nfd", "none"])
def test_round_trip(text: str, normalization: str) -> None:
    tok = CharTokenizer.build(text, normalization=normalization)
    ids = tok.encode(text)
    expected = text if normalization == "none" else unicodedata.normalize("NFC", text)
    assert tok.decode(ids) == expected
    assert all(0 <= i < tok.vocab_size for i in ids)


def test_vocab_is_code_point_order_and_ids_are_positions() -> None:
    tok = CharTokenizer.build("hello")
    assert tok.vocab == ["e", "h", "l", "o"]
    assert tok.encode("hello") == [1, 0, 2, 2, 3]


def test_nfc_keeps_hangul_syllables_nfd_splits_them_into_jamo() -> None:
    # 400 distinct syllables spread over the Hangul block, plus everyday words
    text = " ".join(chr(0xAC00 + 27 * i) for i in range(400)) + " 한국어 대한민국 서울"
    nfc, nfd = CharTokenizer.build(text, "nfc"), CharTokenizer.build(text, "nfd")
    assert len(nfc.encode("한")) == 1
    assert len(nfd.encode("한")) == 3  # ᄒ + ᅡ + ᆫ
    syllables = {c for c in text if c != " "}
    assert nfc.vocab_size == len(syllables) + 1
    # jamo: at most 19 initials + 21 vowels + 27 finals, however many syllables
    assert nfd.vocab_size <= 19 + 21 + 27 + 1 < nfc.vocab_size
    assert all(c == " " or 0x1100 <= ord(c) <= 0x11FF for c in nfd.vocab)
    assert nfd.decode(nfd.encode(text)) == text


def test_unknown_characters_are_named() -> None:
    tok = CharTokenizer.build("abc")
    with pytest.raises(NextcharError, match=r"2 character\(s\).*'x' \(U\+0078\).*'y'"):
        tok.encode("axbyx")


def test_unk_maps_unknown_characters_to_replacement_character() -> None:
    tok = CharTokenizer.build("abc", unk=True)
    assert UNK in tok.vocab
    ids = tok.encode("axb")
    assert ids[1] == tok.vocab.index(UNK)
    assert tok.decode(ids) == "a\ufffdb"
    assert tok.count_unknown("axbyz") == 3


def test_json_round_trip() -> None:
    tok = CharTokenizer.build("서울 seoul", normalization="nfd", unk=True)
    data = json.loads(json.dumps(tok.to_dict()))
    again = tokenizer_from_dict(data)
    assert isinstance(again, CharTokenizer)
    assert again.vocab == tok.vocab
    assert again.normalization == "nfd" and again.unk
    assert again.encode("서울 seoul") == tok.encode("서울 seoul")


def test_bad_descriptions_and_arguments() -> None:
    with pytest.raises(NextcharError, match="unknown tokenizer type"):
        tokenizer_from_dict({"type": "nope"})
    with pytest.raises(NextcharError, match="empty text"):
        CharTokenizer.build("")
    with pytest.raises(NextcharError, match="normalization"):
        CharTokenizer.build("abc", normalization="nfkc")  # type: ignore[arg-type]
    with pytest.raises(NextcharError, match="out of range"):
        CharTokenizer.build("abc").decode([3])


def test_vocabulary_does_not_depend_on_insertion_order() -> None:
    a = CharTokenizer.build("the quick brown fox")
    b = CharTokenizer.build("xof nworb kciuq eht")
    assert a.vocab == b.vocab


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1))
def test_round_trip_property_exact_without_normalization(text: str) -> None:
    tok = CharTokenizer.build(text, normalization="none")
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode(text)) == len(text)


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1))
def test_round_trip_property_nfc_and_nfd(text: str) -> None:
    nfc_text = unicodedata.normalize("NFC", text)
    for normalization in ("nfc", "nfd"):
        tok = CharTokenizer.build(text, normalization=normalization)  # type: ignore[arg-type]
        assert tok.decode(tok.encode(text)) == nfc_text
