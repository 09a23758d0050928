"""PII redaction of transcript text: Turkish ID numbers, phone numbers, IBANs and e-mail addresses.

Transcripts come from Vosk (lowercase words, numbers spoken as words, no digits) or from Whisper
(digits and punctuation), in Turkish or English, so every rule reads written and spoken forms:

* numbers: a run of digit groups and number words ("beş yüz otuz iki" = 532, "double five" = 55;
  spaces and ``, - . ( ) /`` between groups) becomes one digit string, searched for a TCKN
  (11 digits, valid checksum), a phone (+90, 90 or 0, then 10 digits starting 2-5) or an IBAN
  ("TR", "te re" or nothing, then 24 digits passing mod-97) that starts and ends on group edges;
* e-mail: written addresses, and spoken ones ("ali nokta veli et gmail nokta com") only when the
  "at"/"et" word is followed by a dotted domain ending in a known top-level domain.

A finding replaces its whole source span with a label; all other text is kept byte for byte.
Overlapping findings: the longer wins, then iban, tckn, phone, e-mail. A "TR" and 24 digits that
fail mod-97 are no IBAN, and no phone is cut out of them either.

Pure and linear in the text: one tokenizing regex and a pass over the tokens, no I/O, so it runs
on every final segment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

from transcripts.spoken import NUMBER_WORDS, Group, Token, glued, read_run, starts_number, tokenize

Kind = Literal["tckn", "phone", "iban", "email"]

LABELS: dict[Kind, str] = {
    "tckn": "[KİMLİK NO/ID NUMBER]",
    "phone": "[TELEFON/PHONE]",
    "iban": "[IBAN]",
    "email": "[E-POSTA/E-MAIL]",
}

_NUMERIC_KINDS: frozenset[Kind] = frozenset({"tckn", "phone", "iban"})


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str  # the text with each finding replaced by its label
    found: tuple[Kind, ...]  # one kind per finding, in order of appearance


class Redactor:
    """Replaces the chosen kinds of personal data in transcript text by labels agents can read."""

    def __init__(self, kinds: Iterable[Kind]) -> None:
        self._kinds = frozenset(kinds)
        unknown = self._kinds - set(get_args(Kind))
        if unknown:
            raise ValueError(f"unknown PII kinds: {sorted(unknown)}")

    def redact(self, text: str) -> Redacted:
        if not self._kinds:
            return Redacted(text, ())
        tokens = tokenize(text)
        candidates: list[_Finding] = []
        if self._kinds & _NUMERIC_KINDS:
            candidates.extend(_number_findings(text, tokens))
        if "email" in self._kinds:
            candidates.extend(_email_findings(text, tokens))
        parts: list[str] = []
        found: list[Kind] = []
        pos = 0
        for finding in _resolve(candidates):
            # A kind not asked for still wins its span: an IBAN's digits are no phone.
            if finding.kind is None or finding.kind not in self._kinds:
                continue
            parts += (text[pos : finding.start], LABELS[finding.kind])
            found.append(finding.kind)
            pos = finding.end
        if not found:
            return Redacted(text, ())
        parts.append(text[pos:])
        return Redacted("".join(parts), tuple(found))


# --- checks on digit strings ---------------------------------------------------------------------


def is_tckn(digits: str) -> bool:
    """11 digits, not starting with 0, with both check digits of the Turkish ID number."""
    if len(digits) != 11 or not digits.isascii() or not digits.isdigit() or digits[0] == "0":
        return False
    d = [int(c) for c in digits]
    return (sum(d[0:9:2]) * 7 - sum(d[1:8:2])) % 10 == d[9] and sum(d[:10]) % 10 == d[10]


def is_phone(digits: str) -> bool:
    """A Turkish number: +90, 90 or 0 (or nothing), then 10 digits starting 2-4 (land) or 5 (mobile)."""
    if len(digits) == 12 and digits.startswith("90"):
        digits = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        digits = digits[1:]
    return len(digits) == 10 and digits[0] in "2345"


def is_tr_iban(digits: str) -> bool:
    """The 24 digits after "TR" pass ISO 7064 mod-97 (T=29, R=27 once moved to the end)."""
    return len(digits) == 24 and int(digits[2:] + "2927" + digits[:2]) % 97 == 1


_PHONE_PLUS = frozenset({"+", "arti", "plus"})
_TR_MARKERS = frozenset({("te", "re"), ("t", "r"), ("ti", "ar"), ("tee", "ar")})


# --- findings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Finding:
    start: int
    end: int
    kind: Kind | None  # None: a span that is nothing, yet must not be cut into (a bad IBAN)


_RANK: dict[Kind | None, int] = {"iban": 0, None: 0, "tckn": 1, "phone": 2, "email": 3}


def _resolve(candidates: list[_Finding]) -> list[_Finding]:
    """Non-overlapping findings in text order: longer spans first, then by kind precedence."""
    chosen: list[_Finding] = []
    for f in sorted(candidates, key=lambda f: (f.start - f.end, _RANK[f.kind], f.start)):
        if all(f.end <= c.start or f.start >= c.end for c in chosen):
            chosen.append(f)
    return sorted(chosen, key=lambda f: f.start)


def _tr_marker(tokens: list[Token], i: int) -> int | None:
    """Start of a "TR" / "te re" said or written just before token i."""
    if i >= 1 and tokens[i - 1].key == "tr":
        return tokens[i - 1].start
    if i >= 2 and (tokens[i - 2].key, tokens[i - 1].key) in _TR_MARKERS:
        return tokens[i - 2].start
    return None


def _number_kinds(digits: str) -> list[Kind]:
    if len(digits) == 24:
        return ["iban"] if is_tr_iban(digits) else []
    kinds: list[Kind] = []
    if is_tckn(digits):
        kinds.append("tckn")
    if is_phone(digits):
        kinds.append("phone")
    return kinds


def _widen(text: str, tokens: list[Token], first: int, last: int, plus: bool) -> tuple[int, int]:
    """The span of tokens first..last, with a "+" before it if asked and parentheses kept in pairs."""
    start, end = tokens[first].start, tokens[last].end
    if plus and first > 0 and tokens[first - 1].key in _PHONE_PLUS:
        first -= 1
        start = tokens[first].start
    span = text[start:end]
    if span.count(")") > span.count("(") and first > 0 and tokens[first - 1].text == "(":
        start = tokens[first - 1].start
    if span.count("(") > span.count(")") and last + 1 < len(tokens) and tokens[last + 1].text == ")":
        end = tokens[last + 1].end
    return start, end


def _run_findings(text: str, tokens: list[Token], groups: list[Group]) -> Iterator[_Finding]:
    digits = "".join(g.digits for g in groups)
    # A finding starts and ends on group edges: "1 532 123 45 67" holds a phone, "15321234567" not.
    edges: dict[int, int] = {}  # digit offset -> index of the group starting there
    total = 0
    for k, group in enumerate(groups):
        edges[total] = k
        total += len(group.digits)
    edges[total] = len(groups)
    marker = _tr_marker(tokens, groups[0].first)
    if marker is not None:
        if is_tr_iban(digits[:24]) and 24 in edges:
            yield _Finding(marker, tokens[groups[edges[24] - 1].last].end, "iban")
        elif (end_k := next((k for offset, k in edges.items() if offset >= 24), None)) is not None:
            # A bad or misheard IBAN: not one, and no phone or ID is to be cut out of it.
            yield _Finding(marker, tokens[groups[end_k - 1].last].end, None)
    for offset, k in edges.items():
        for length in (24, 12, 11, 10):
            end_k = edges.get(offset + length)
            if end_k is None or (length == 24 and k == 0 and marker is not None):
                continue
            found = digits[offset : offset + length]
            first, last = groups[k].first, groups[end_k - 1].last
            for kind in _number_kinds(found):
                start, end = _widen(text, tokens, first, last, kind == "phone" and found.startswith("90"))
                yield _Finding(start, end, kind)


def _number_findings(text: str, tokens: list[Token]) -> Iterator[_Finding]:
    i = 0
    while i < len(tokens):
        if starts_number(tokens, i):
            groups, i = read_run(tokens, i)
            yield from _run_findings(text, tokens, groups)
        else:
            i += 1


# --- e-mail --------------------------------------------------------------------------------------

_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[^\W\d_]{2,}")
_AT_WORDS = frozenset({"at", "et", "@"})
_AT_PAIRS = frozenset({("kuyruklu", "a")})  # Turkish for "@"
_DOT_WORDS = frozenset({"nokta", "dot"})
_LOCAL_SEPARATOR_WORDS = _DOT_WORDS | {"tire", "dash", "hyphen", "underscore", "altcizgi"}
_LOCAL_SEPARATOR_PAIRS = frozenset({("alt", "cizgi"), ("alt", "tire"), ("under", "score")})
_GLUED_SEPARATORS = frozenset("._-")
_TLDS = frozenset(
    {"com", "kom", "net", "org", "gov", "edu", "mil", "int", "tr", "info", "io", "co", "uk", "de", "eu"}
    | {"biz", "av", "bel", "gen", "pol", "tsk"}
)
_TLD_PAIRS = frozenset({("te", "re"), ("t", "r")})
# Words before "at"/"et" that make a web address or a plain sentence, not a mailbox name.
_NOT_MAILBOXES = frozenset(
    {"look", "looking", "visit", "check", "go", "find", "us", "me", "him", "her", "them", "it"}
    | {"is", "are", "was", "were", "be", "been", "am", "i", "we", "you", "they", "he", "she"}
    | {"online", "here", "there", "site", "website", "page", "available", "live", "lives", "work"}
    | {"ziyaret", "kontrol", "dikkat", "tesekkur", "takip", "yardim", "rica", "kayit", "bak", "ara", "et"}
)


def _is_name(token: Token) -> bool:
    return (
        token.kind != "sym"
        and token.key not in _AT_WORDS
        and token.key not in _LOCAL_SEPARATOR_WORDS
        and token.key != "alt"
    )


def _is_numeric(token: Token) -> bool:
    return token.kind == "num" or token.key in NUMBER_WORDS


def _at_end(tokens: list[Token], i: int) -> int | None:
    if tokens[i].key in _AT_WORDS:
        return i + 1
    if i + 1 < len(tokens) and (tokens[i].key, tokens[i + 1].key) in _AT_PAIRS:
        return i + 2
    return None


def _element_start(tokens: list[Token], end: int) -> int | None:
    """Start of a mailbox-name element ending before token end: "ali", "ali yirmi üç", "ali2"."""
    k = end
    while k > 0 and _is_numeric(tokens[k - 1]) and _is_name(tokens[k - 1]):
        k -= 1
    if k > 0 and _is_name(tokens[k - 1]):
        k -= 1
    while k > 0 and glued(tokens[k - 1], tokens[k]) and _is_name(tokens[k - 1]):
        k -= 1
    return k if k < end else None


def _separator_start(tokens: list[Token], end: int) -> int | None:
    """Start of a separator (".", "nokta", "alt çizgi", ...) ending before token end."""
    if end >= 1 and tokens[end - 1].key in _LOCAL_SEPARATOR_WORDS:
        return end - 1
    if end >= 2 and (tokens[end - 2].key, tokens[end - 1].key) in _LOCAL_SEPARATOR_PAIRS:
        return end - 2
    if (
        end >= 2
        and tokens[end - 1].text in _GLUED_SEPARATORS
        and glued(tokens[end - 2], tokens[end - 1])
        and glued(tokens[end - 1], tokens[end])
    ):
        return end - 1
    return None


def _local_start(tokens: list[Token], at: int) -> int | None:
    """First token of the mailbox name said before the "at" word at token index at."""
    start = _element_start(tokens, at)
    if start is None:
        return None
    if tokens[start].key in _NOT_MAILBOXES and start == at - 1:
        sep = _separator_start(tokens, start)
        if sep is None or _element_start(tokens, sep) is None:
            return None
    while (sep := _separator_start(tokens, start)) is not None:
        before = _element_start(tokens, sep)
        if before is None:
            break
        start = before
    return start


def _domain_part_end(tokens: list[Token], i: int) -> int | None:
    """End of one domain label from token i: "gmail", "alo183", "my-site"."""
    j = i
    while j < len(tokens) and _is_name(tokens[j]) and (j == i or glued(tokens[j - 1], tokens[j])):
        j += 1
        if (
            j + 1 < len(tokens)
            and tokens[j].text == "-"
            and _is_name(tokens[j + 1])
            and glued(tokens[j - 1], tokens[j])
            and glued(tokens[j], tokens[j + 1])
        ):
            j += 1
    return j if j > i else None


def _dot_end(tokens: list[Token], i: int) -> int | None:
    if i >= len(tokens):
        return None
    if tokens[i].key in _DOT_WORDS:
        return i + 1
    glued_dot = (
        tokens[i].text == "."
        and i + 1 < len(tokens)
        and glued(tokens[i - 1], tokens[i])
        and glued(tokens[i], tokens[i + 1])
    )
    return i + 1 if glued_dot else None


def _tld_end(tokens: list[Token], i: int) -> int | None:
    if i + 1 < len(tokens) and (tokens[i].key, tokens[i + 1].key) in _TLD_PAIRS:
        return i + 2
    if tokens[i].key in _TLDS and _domain_part_end(tokens, i) == i + 1:
        return i + 1
    return None


def _domain_end(tokens: list[Token], i: int) -> int | None:
    """End of a dotted domain from token i whose last label is a known top-level domain."""
    j = _domain_part_end(tokens, i) if i < len(tokens) else None
    end = None
    while j is not None and (dot := _dot_end(tokens, j)) is not None and dot < len(tokens):
        if (tld := _tld_end(tokens, dot)) is not None:
            end = j = tld
        else:
            j = _domain_part_end(tokens, dot)
    return end


def _email_findings(text: str, tokens: list[Token]) -> Iterator[_Finding]:
    for m in _EMAIL.finditer(text):
        yield _Finding(m.start(), m.end(), "email")
    for i in range(1, len(tokens)):
        at = _at_end(tokens, i)
        if at is None:
            continue
        start = _local_start(tokens, i)
        end = _domain_end(tokens, at)
        if start is not None and end is not None:
            yield _Finding(tokens[start].start, tokens[end - 1].end, "email")
