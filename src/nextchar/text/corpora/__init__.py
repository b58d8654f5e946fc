"""Built-in corpora: texts shipped inside the package (xz-compressed), so that a class without
internet can train on the guide's commands. A name works wherever a text file does:
`shakespeare` is a corpus's training text, `shakespeare:val` its validation text. A local
file or directory of the same name wins (data.read_text asks the file system first).

Sources and licences: SOURCES.md beside this file. Nothing here imports torch.
"""

from __future__ import annotations

import lzma
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable

SPLITS = ("train", "val")


@dataclass(frozen=True)
class BuiltinCorpus:
    name: str
    title: str
    licence: str
    chars: tuple[int, int]  # NFC characters of the training and validation text

    def resource(self, split: str) -> Traversable:
        return resources.files(__package__).joinpath(f"{self.name}_{split}.txt.xz")

    def text(self, split: str = "train") -> str:
        with lzma.open(self.resource(split).open("rb"), "rt", encoding="utf-8") as f:
            return f.read()

    def compressed_bytes(self) -> int:
        return sum(len(self.resource(split).read_bytes()) for split in SPLITS)


CORPORA = {
    c.name: c
    for c in (
        BuiltinCorpus(
            "shakespeare",
            "37 plays of Shakespeare (Project Gutenberg texts)",
            "public domain",
            (4_058_957, 450_996),
        ),
        BuiltinCorpus(
            "korean",
            "대한민국헌법 and 7 National Assembly bills (KoNLPy kolaw, kobill)",
            "not protected by copyright (Korean Copyright Act art. 7)",
            (43_398, 4_822),
        ),
    )
}


def parse_name(ref: str) -> tuple[BuiltinCorpus, str] | None:
    """('shakespeare', 'train') for 'shakespeare' or 'shakespeare:train', ('shakespeare',
    'val') for 'shakespeare:val'; None when `ref` names no built-in corpus."""
    name, _, split = ref.partition(":")
    corpus = CORPORA.get(name)
    if corpus is None or (split or "train") not in SPLITS:
        return None
    return corpus, split or "train"


def builtin_text(ref: str) -> str | None:
    """The text a built-in name stands for, or None when it names no built-in corpus."""
    parsed = parse_name(ref)
    return None if parsed is None else parsed[0].text(parsed[1])


def default_validation(files: tuple[str, ...] | list[str]) -> str | None:
    """`train shakespeare` validates on `shakespeare:val` (the split bench/RESULTS.md's numbers
    use), not on a tenth cut from the training text. Only for one corpus named without a
    split; `shakespeare:train` asks for val_fraction's cut instead."""
    if len(files) != 1 or ":" in files[0] or parse_name(files[0]) is None:
        return None
    return f"{files[0]}:val"


def names_hint() -> str:
    return f"built-in corpora: {', '.join(CORPORA)} (and NAME:val); `nextchar corpora` lists them"


def listing() -> list[str]:
    """The table of `nextchar corpora`."""
    rows = [("name", "train chars", "val chars", "in the package", "licence, source")]
    for c in CORPORA.values():
        rows.append(
            (
                c.name,
                f"{c.chars[0]:,}",
                f"{c.chars[1]:,}",
                f"{c.compressed_bytes() / 1e6:.2f} MB (xz)",
                f"{c.licence}; {c.title}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  "
        f"{r[3]:>{widths[3]}}  {r[4]}"
        for r in rows
    ]
    lines += [
        "",
        "A name works wherever a text file does: NAME is the training text, NAME:val the",
        "validation text (`nextchar train shakespeare` validates on shakespeare:val). A file or",
        "directory of that name in the current directory is read instead.",
        f"Sources and licences: {resources.files(__package__).joinpath('SOURCES.md')}",
    ]
    return lines
