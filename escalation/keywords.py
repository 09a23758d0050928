"""Urgent words in live transcripts (``config/keywords.toml``): text normalisation and the matcher.

Every partial and final line of every live call goes through ``Matcher.match``, so all the work
that does not depend on the line (normalising the configured words, indexing rules by their first
word) is done once, when the matcher is built. Per line the cost is one tokenisation plus, per
token, a few dictionary look-ups; only rules whose first word occurs are checked further.

A match is a rule whose phrase occurs in order (with at most ``gap`` other words between its
words), is not cancelled by a negation cue just before it (same clause) or just after it, and is
not vetoed by one of the rule's ``unless`` phrases nearby. One ``Match`` per rule and line at
most: the first valid occurrence. The caller dedups across partials by rule id.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from escalation.errors import EscalationConfigError
from escalation.models import Severity
from hotline.settings import describe_error, read_toml

MIN_PREFIX = 3  # a shorter prefix ("vu", "ki") matches far too many words; write it "=vu"

Name = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)]
Window = Annotated[int, Field(ge=0, le=8)]


# --- normalisation -------------------------------------------------------------------------------

# A token is a run of letters, digits and combining marks (Arabic tashkeel, decomposed accents).
_TOKEN = re.compile(r"(?:[^\W_]|[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed])+")
_APOSTROPHES = "'’‘`ʼ´"  # noqa: RUF001 - the apostrophes speech engines and keyboards produce
_CLAUSE_BREAK = re.compile(r"[.!?;:,؟،؛…]")
# Languages where an apostrophe joins a contraction ("don't" -> "dont") instead of splitting a
# suffix off a name (Turkish "Ali'nin" -> "ali", "nin").
_JOIN_APOSTROPHE = frozenset({"en"})
_CONTRACTION = re.compile(rf"(?<=\w)[{_APOSTROPHES}](?=\w)")
_FOLD = str.maketrans(
    {
        "ı": "i",
        "\u0629": "\u0647",  # ta marbuta to heh: speech engines and writers use both
        "\u0649": "\u064a",  # alef maqsura to yeh
        "\u0640": None,  # tatweel, a stretching stroke
        **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
        **{chr(0x06F0 + d): str(d) for d in range(10)},  # Persian digits
    }
)


@lru_cache(maxsize=65536)  # partials repeat the same words again and again
def _fold(word: str, language: str) -> str:
    """Lower-case and strip diacritics: "BIÇAK", "bıçak", "bicak" all become "bicak"; Arabic
    alef forms with hamza or madda become a bare alef, and tashkeel disappears."""
    if language == "tr":  # Turkish dotted and dotless capitals
        word = word.replace("İ", "i").replace("I", "ı")
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.translate(_FOLD)


@dataclass(frozen=True, slots=True)
class Token:
    text: str  # normalised
    original: str  # as written in the transcript, for evidence
    clause: int  # counts punctuation breaks before it: negation does not cross a clause


def tokenise(text: str, language: str) -> list[Token]:
    if language in _JOIN_APOSTROPHE:
        text = _CONTRACTION.sub("", text)
    found: list[Token] = []
    clause, last = 0, 0
    for m in _TOKEN.finditer(text):
        if _CLAUSE_BREAK.search(text, last, m.start()):
            clause += 1
        last = m.end()
        folded = _fold(m.group(), language)
        for part in _TOKEN.findall(folded):  # folding may leave nothing, or split ligatures
            found.append(Token(part, m.group(), clause))
    return found


def normalise(text: str, language: str) -> list[str]:
    """The normalised tokens of ``text``: what rule words are compared with."""
    return [t.text for t in tokenise(text, language)]


# --- configuration -------------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LanguageConfig(_Model):
    match: Literal["prefix", "exact"] = "prefix"  # how a plain word matches a token
    gap: Window = 2  # other tokens allowed between two words of a phrase
    negations: list[str] = Field(default_factory=list)  # cues before the phrase
    negation_window: Window = 3
    negation_breaks: list[str] = Field(default_factory=list)  # end a cue's reach ("doesn't stop hitting")
    negations_after: list[str] = Field(default_factory=list)  # cues after it (Turkish "değil")
    negation_after_window: Window = 2
    unless_window: Window = 3  # how far from the match an ``unless`` phrase vetoes it
    proclitics: list[str] = Field(default_factory=list)  # glued prefixes a word may carry (Arabic "ال")


class RuleConfig(_Model):
    language: Name
    category: Name
    severity: Annotated[Severity, Field(strict=False)]  # read from a string
    words: list[str]
    not_words: list[str] = Field(default_factory=list)
    unless: list[str] = Field(default_factory=list)
    gap: Window | None = None

    @field_validator("words")
    @classmethod
    def _not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("must not be empty")
        return value


class _KeyedError(ValueError):
    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")


class KeywordsConfig(_Model):
    categories: list[Name] = Field(min_length=1)
    languages: dict[Name, LanguageConfig]
    rules: dict[Name, RuleConfig]  # TOML itself refuses a rule id declared twice

    @model_validator(mode="after")
    def _known_names(self) -> KeywordsConfig:
        for rule_id, rule in self.rules.items():
            if rule.language not in self.languages:
                known = sorted(self.languages)
                raise _KeyedError(
                    f"rules.{rule_id}.language",
                    f"unknown language {rule.language!r}; [languages] has {known}",
                )
            if rule.category not in self.categories:
                raise _KeyedError(f"rules.{rule_id}.category", f"unknown category {rule.category!r}")
        return self


# --- compiled rules ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Word:
    exact: frozenset[str]
    prefixes: tuple[str, ...]

    def matches(self, stems: Sequence[str]) -> bool:
        return any(s in self.exact or s.startswith(self.prefixes) for s in stems)


_Phrase = tuple[_Word, ...]


@dataclass(frozen=True, slots=True)
class _Rule:
    id: str
    category: str
    severity: Severity
    phrases: tuple[_Phrase, ...]
    not_words: _Word
    unless: tuple[_Phrase, ...]
    gap: int


@dataclass(frozen=True, slots=True)
class Match:
    rule_id: str
    category: str
    severity: Severity
    evidence: tuple[str, ...]  # the matched words as they appeared in the transcript
    positions: tuple[int, ...]  # their token indices (in ``normalise`` order)


def _parse_word(spec: str, language: str, default: str, key: str) -> _Word:
    """``knife|knives``, ``=gun`` (whole token), ``bicak*`` (any token starting so)."""
    exact: set[str] = set()
    prefixes: list[str] = []
    for alt in spec.split("|"):
        mode = default
        if alt.startswith("="):
            mode, alt = "exact", alt[1:]
        elif alt.endswith("*"):
            mode, alt = "prefix", alt[:-1]
        tokens = normalise(alt, language)
        if len(tokens) != 1:
            raise _KeyedError(key, f"{spec!r}: each alternative must be one word")
        word = tokens[0]
        if mode == "exact":
            exact.add(word)
        elif len(word) < MIN_PREFIX:
            raise _KeyedError(key, f"{spec!r}: prefix {word!r} is too short; write ={word} for a whole word")
        else:
            prefixes.append(word)
    return _Word(frozenset(exact), tuple(prefixes))


def _parse_phrase(spec: str, language: str, default: str, key: str) -> _Phrase:
    words = spec.split()
    if not words:
        raise _KeyedError(key, "a phrase must not be empty")
    return tuple(_parse_word(w, language, default, key) for w in words)


def _compile(rule_id: str, rule: RuleConfig, lang: LanguageConfig) -> _Rule:
    def phrases(field: str, specs: list[str]) -> tuple[_Phrase, ...]:
        key = f"rules.{rule_id}.{field}"
        return tuple(_parse_phrase(s, rule.language, lang.match, f"{key}[{i}]") for i, s in enumerate(specs))

    not_words = [
        _parse_word(w, rule.language, lang.match, f"rules.{rule_id}.not_words[{i}]")
        for i, w in enumerate(rule.not_words)
    ]
    return _Rule(
        id=rule_id,
        category=rule.category,
        severity=rule.severity,
        phrases=phrases("words", rule.words),
        not_words=_Word(
            frozenset().union(*(w.exact for w in not_words)), tuple(p for w in not_words for p in w.prefixes)
        ),
        unless=phrases("unless", rule.unless),
        gap=lang.gap if rule.gap is None else rule.gap,
    )


class _Language:
    """One language's rules, indexed by the first word of each phrase."""

    def __init__(self, name: str, config: LanguageConfig, rules: Iterable[_Rule]) -> None:
        self.name = name
        self.config = config
        self.negations = frozenset(t for cue in config.negations for t in normalise(cue, name))
        self.negations_after = frozenset(t for cue in config.negations_after for t in normalise(cue, name))
        self.negation_breaks = frozenset(t for w in config.negation_breaks for t in normalise(w, name))
        self.proclitics = tuple(sorted({t for p in config.proclitics for t in normalise(p, name)}, key=len))
        self.rules = tuple(rules)
        # First word of each phrase -> (rule index, phrase index): where a phrase may start.
        self.by_exact: dict[str, list[tuple[int, int]]] = {}
        self.by_prefix: dict[str, list[tuple[int, int]]] = {}
        for r, rule in enumerate(self.rules):
            for k, phrase in enumerate(rule.phrases):
                for word in phrase[0].exact:
                    self.by_exact.setdefault(word, []).append((r, k))
                for prefix in phrase[0].prefixes:
                    self.by_prefix.setdefault(prefix, []).append((r, k))
        self.prefix_lengths = sorted({len(p) for p in self.by_prefix})

    def stems(self, token: str) -> tuple[str, ...]:
        """The token, and the token without the glued proclitics it starts with (two at most:
        و + ال in والسكين)."""
        if not self.proclitics:
            return (token,)
        found = [token]
        for stem in (token, *(token[len(p) :] for p in self.proclitics if token.startswith(p))):
            for p in self.proclitics:
                if stem.startswith(p) and len(stem) - len(p) >= 2:
                    found.append(stem[len(p) :])
        return tuple(dict.fromkeys(found))

    def starts(self, stems: Sequence[tuple[str, ...]]) -> dict[int, list[tuple[int, int]]]:
        """Rule index -> (token position, phrase index) where one of its phrases may start, in
        text order: the only places the matcher looks at further."""
        found: dict[int, list[tuple[int, int]]] = {}
        for pos, variants in enumerate(stems):
            hits: set[tuple[int, int]] = set()
            for stem in variants:
                hits.update(self.by_exact.get(stem, ()))
                for length in self.prefix_lengths:
                    if length > len(stem):
                        break
                    hits.update(self.by_prefix.get(stem[:length], ()))
            for r, k in sorted(hits):
                found.setdefault(r, []).append((pos, k))
        return found


class Matcher:
    """Urgent-word rules for every configured language; ``match`` is pure and cheap."""

    def __init__(self, config: KeywordsConfig, source: str = "keywords") -> None:
        self._languages: dict[str, _Language] = {}
        try:
            for name, lang in config.languages.items():
                rules = [_compile(i, r, lang) for i, r in config.rules.items() if r.language == name]
                self._languages[name] = _Language(name, lang, rules)
        except _KeyedError as exc:
            raise EscalationConfigError(f"{source}: {exc}") from None

    @property
    def languages(self) -> frozenset[str]:
        return frozenset(self._languages)

    def match(self, text: str, language: str) -> list[Match]:
        """The rules ``text`` matches, at most one ``Match`` each; [] for an unknown language."""
        lang = self._languages.get(language)
        if lang is None:
            return []
        tokens = tokenise(text, language)
        stems = [lang.stems(t.text) for t in tokens]
        found: list[Match] = []
        starts = lang.starts(stems)
        for r in sorted(starts):
            rule = lang.rules[r]
            positions = _first_valid(rule, starts[r], lang, tokens, stems)
            if positions is not None:
                evidence = tuple(tokens[i].original for i in positions)
                found.append(Match(rule.id, rule.category, rule.severity, evidence, positions))
        return found


def _extend(
    phrase: _Phrase, placed: tuple[int, ...], stems: Sequence[tuple[str, ...]], gap: int, skip: _Word | None
) -> Iterable[tuple[int, ...]]:
    """Every placement of the rest of the phrase after ``placed``, at most ``gap`` tokens apart."""
    k = len(placed)
    if k == len(phrase):
        yield placed
        return
    last = placed[-1]
    for i in range(last + 1, min(last + 2 + gap, len(stems))):
        if phrase[k].matches(stems[i]) and (skip is None or not skip.matches(stems[i])):
            yield from _extend(phrase, (*placed, i), stems, gap, skip)


def _occurrences(phrase: _Phrase, stems: Sequence[tuple[str, ...]], gap: int) -> Iterable[tuple[int, ...]]:
    for start in range(len(stems)):
        if phrase[0].matches(stems[start]):
            yield from _extend(phrase, (start,), stems, gap, None)


def _first_valid(
    rule: _Rule,
    starts: Sequence[tuple[int, int]],
    lang: _Language,
    tokens: Sequence[Token],
    stems: Sequence[tuple[str, ...]],
) -> tuple[int, ...] | None:
    """The earliest occurrence of one of the rule's phrases that is neither negated nor vetoed."""
    skip = rule.not_words if rule.not_words.exact or rule.not_words.prefixes else None
    for start, k in starts:
        if skip is not None and skip.matches(stems[start]):
            continue
        for placed in _extend(rule.phrases[k], (start,), stems, rule.gap, skip):
            if not _negated(placed, lang, tokens) and not _vetoed(placed, rule, lang, stems):
                return placed
    return None


def _negated(placed: tuple[int, ...], lang: _Language, tokens: Sequence[Token]) -> bool:
    first, last = placed[0], placed[-1]
    cfg = lang.config
    for i in range(first - 1, max(-1, first - 1 - cfg.negation_window), -1):
        if tokens[i].clause != tokens[first].clause or tokens[i].text in lang.negation_breaks:
            break
        if tokens[i].text in lang.negations:
            return True
    for i in range(last + 1, min(len(tokens), last + 1 + cfg.negation_after_window)):
        if tokens[i].text in lang.negations_after and tokens[i].clause == tokens[last].clause:
            return True
    return False


def _vetoed(placed: tuple[int, ...], rule: _Rule, lang: _Language, stems: Sequence[tuple[str, ...]]) -> bool:
    """An ``unless`` phrase overlapping the match or within ``unless_window`` tokens of it."""
    low, high = placed[0] - lang.config.unless_window, placed[-1] + lang.config.unless_window
    for phrase in rule.unless:
        for found in _occurrences(phrase, stems, rule.gap):
            if found[0] > high:
                break
            if found[-1] >= low:
                return True
    return False


def load_keywords(path: Path) -> Matcher:
    """Load, validate and compile the rules; a bad file raises one line naming file, key, reason."""
    data = read_toml(path, EscalationConfigError)
    try:
        config = KeywordsConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        cause = err.get("ctx", {}).get("error")
        if isinstance(cause, _KeyedError):
            raise EscalationConfigError(f"{path}: {cause}") from None
        raise EscalationConfigError(f"{path}: {describe_error(err)}") from None
    return Matcher(config, str(path))
