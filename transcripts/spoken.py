"""Reading transcript text as a speech recognizer writes it: tokens with their place in the
text, and runs of spoken or written numbers turned into digit strings ("beş yüz otuz iki" = 532,
"five three two, one two three" = 532123, "double five" = 55), in Turkish and English.

Pure and linear in the text; what the digits mean is for the caller to decide (redaction).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

# --- tokens --------------------------------------------------------------------------------------

_TOKEN = re.compile(r"(?P<num>[0-9]+)|(?P<word>[^\W\d_]+)|(?P<sym>\S)")

TokenKind = Literal["num", "word", "sym"]


@dataclass(frozen=True, slots=True)
class Token:
    text: str
    key: str  # folded for look-ups: lowercase ASCII
    kind: TokenKind
    start: int
    end: int


_ASCII = str.maketrans("ıçğöşü", "icgosu", "\u0307")


def _fold(word: str) -> str:
    # One key for "altı", "alti", "ALTI" and "ALTİ" alike: recognizers write any of them, and "I"
    # lowers to "i" while "İ" lowers to "i" plus a combining dot.
    return word.lower().translate(_ASCII)


def tokenize(text: str) -> list[Token]:
    tokens = []
    for m in _TOKEN.finditer(text):
        kind: TokenKind = "num" if m["num"] else "word" if m["word"] else "sym"
        tokens.append(Token(m[0], _fold(m[0]), kind, m.start(), m.end()))
    return tokens


def glued(left: Token, right: Token) -> bool:
    return left.end == right.start


# --- number words --------------------------------------------------------------------------------

# Keys are folded (see _fold): "uc" is "üç", "kirk" is "kırk".
_ZEROS = frozenset({"sifir", "zero", "oh"})
_UNITS = {
    "bir": 1, "iki": 2, "uc": 3, "dort": 4, "bes": 5, "alti": 6, "yedi": 7, "sekiz": 8, "dokuz": 9,
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
}  # fmt: skip
_TEENS = {
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "on": 10, "yirmi": 20, "otuz": 30, "kirk": 40, "elli": 50, "altmis": 60, "yetmis": 70,
    "seksen": 80, "doksan": 90,
    "ten": 10, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
    "eighty": 80, "ninety": 90,
}  # fmt: skip
_HUNDREDS = frozenset({"yuz", "hundred"})
_THOUSANDS = frozenset({"bin", "thousand"})
_REPEATS = {"double": 2, "triple": 3}
NUMBER_WORDS = _ZEROS | _UNITS.keys() | _TEENS.keys() | _TENS.keys() | _HUNDREDS | _THOUSANDS

# Between two groups of one run ("0 (532) 123-45-67", "five three two, one two three").
_RUN_SEPARATORS = frozenset(",-.()/\u2013\u2014")  # with en and em dashes
_MAX_SEPARATORS = 2


class _Number:
    """One spoken number composed word by word: hundreds, then tens, then units ("beş yüz otuz iki")."""

    __slots__ = ("below", "empty", "hundreds", "tens", "thousands", "units")

    def __init__(self) -> None:
        self.empty = True
        self.thousands = 0  # value of the part before "bin"/"thousand"
        self.below = 0  # value of the part after it
        self.hundreds = self.tens = self.units = False

    def add(self, key: str, next_key: str = "") -> bool:
        """Take the next word if it extends this number; False means it starts a new one.

        A unit before "yüz"/"hundred" multiplies it, so it only extends a bare thousand:
        "doksan beş yüz" is 90 then 500, "bin beş yüz" is 1500.
        """
        if key in _UNITS and next_key in _HUNDREDS and not (self.empty or self._bare_thousand()):
            return False
        if key in _UNITS and not self.units:
            self.below += _UNITS[key]
            self.units = True
        elif (key in _TENS or key in _TEENS) and not (self.tens or self.units):
            self.below += _TENS.get(key) or _TEENS[key]
            self.tens = True
            self.units = key in _TEENS
        elif key in _HUNDREDS and not (self.hundreds or self.tens) and (self.units or self.below == 0):
            self.below = (self.below or 1) * 100
            self.hundreds, self.units = True, False
        elif key in _THOUSANDS and not self.thousands:
            self.thousands = (self.below or 1) * 1000
            self.below = 0
            self.hundreds = self.tens = self.units = False
        else:
            return False
        self.empty = False
        return True

    def _bare_thousand(self) -> bool:
        return self.thousands > 0 and not (self.hundreds or self.tens or self.units)

    def digits(self) -> str:
        return str(self.thousands + self.below)


@dataclass(frozen=True, slots=True)
class Group:
    first: int  # token indices, inclusive
    last: int
    digits: str


def _single_digit(token: Token) -> str | None:
    if token.key in _ZEROS:
        return "0"
    if token.key in _UNITS:
        return str(_UNITS[token.key])
    if token.kind == "num" and len(token.text) == 1:
        return token.text
    return None


def starts_number(tokens: list[Token], i: int) -> bool:
    token = tokens[i]
    if token.kind == "num" or token.key in NUMBER_WORDS:
        return True
    return token.key in _REPEATS and i + 1 < len(tokens) and _single_digit(tokens[i + 1]) is not None


def _read_group(tokens: list[Token], i: int) -> Group:
    token = tokens[i]
    if token.kind == "num":
        return Group(i, i, token.text)
    if token.key in _REPEATS:  # "double five": starts_number checked the digit
        return Group(i, i + 1, (_single_digit(tokens[i + 1]) or "") * _REPEATS[token.key])
    if token.key in _ZEROS:  # a zero never combines: "sıfır beş yüz" is 0 then 500
        return Group(i, i, "0")
    number = _Number()
    number.add(token.key)
    j = i + 1
    while j < len(tokens) and number.add(tokens[j].key, tokens[j + 1].key if j + 1 < len(tokens) else ""):
        j += 1
    return Group(i, j - 1, number.digits())


def read_run(tokens: list[Token], i: int) -> tuple[list[Group], int]:
    """The groups of the number run starting at token i, and the index after the run."""
    groups: list[Group] = []
    while True:
        group = _read_group(tokens, i)
        groups.append(group)
        i = j = group.last + 1
        while j < len(tokens) and j - i < _MAX_SEPARATORS and tokens[j].text in _RUN_SEPARATORS:
            j += 1
        if j >= len(tokens) or not starts_number(tokens, j):
            return groups, i
        i = j
