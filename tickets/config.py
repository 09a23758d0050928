"""Case categories, responsible units and their routing (``config/tickets.toml``), validated at
start-up, and the pure rules built on them: a category suggested from what was said, the unit
for a category and province, the province of a landline number."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hotline.settings import SettingsError, describe_error, read_toml
from tickets.models import Priority

Name = Annotated[str, Field(pattern=r"^[a-z0-9_]+$", max_length=64)]
WorkingDays = Annotated[int, Field(ge=1, le=365)]


class TicketsConfigError(SettingsError):
    """The tickets configuration is wrong; ``str()`` names file, key and reason."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Category(_Model):
    label: dict[str, str]
    due_working_days: WorkingDays | None = None
    priority: Annotated[Priority, Field(strict=False)] = Priority.normal  # read from a string
    words: dict[str, list[str]] = Field(default_factory=dict)


class Unit(_Model):
    label: dict[str, str]


class Rule(_Model):
    category: Name | None = None
    province: str | None = None
    unit: Name


class Routing(_Model):
    default_unit: Name
    rules: list[Rule] = Field(default_factory=list)


class TicketsConfig(_Model):
    default_due_working_days: WorkingDays = 15
    categories: dict[Name, Category] = Field(default_factory=dict)
    units: dict[Name, Unit]
    routing: Routing
    provinces: dict[Annotated[str, Field(pattern=r"^[2-4][0-9]{2}$")], str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_names(self) -> TicketsConfig:
        units = [self.routing.default_unit, *(r.unit for r in self.routing.rules)]
        for unit in units:
            if unit not in self.units:
                raise ValueError(f"routing: unknown unit {unit!r}; units are {sorted(self.units)}")
        for rule in self.routing.rules:
            if rule.category is not None and rule.category not in self.categories:
                raise ValueError(f"routing: unknown category {rule.category!r}")
        return self

    def due_working_days(self, category: str | None) -> int:
        found = self.categories.get(category or "")
        if found is None or found.due_working_days is None:
            return self.default_due_working_days
        return found.due_working_days

    def priority(self, category: str | None, urgent: bool) -> Priority:
        if urgent:
            return Priority.urgent
        found = self.categories.get(category or "")
        return found.priority if found is not None else Priority.normal

    def province(self, caller_number: str) -> str | None:
        """A landline's province from its area code (0312…, +90312…, 90312…); None for mobiles."""
        digits = re.sub(r"\D", "", caller_number)
        for prefix in ("90", "0"):
            if digits.startswith(prefix) and len(digits) - len(prefix) == 10:
                return self.provinces.get(digits[len(prefix) : len(prefix) + 3])
        return None

    def unit_for(self, category: str | None, province: str | None) -> str:
        for rule in self.routing.rules:
            if rule.category not in (None, category):
                continue
            if rule.province is not None and rule.province != province:
                continue
            return rule.unit
        return self.routing.default_unit

    def suggest(self, text: str, language: str) -> str | None:
        """The category whose words occur most in ``text`` (whole words or phrases, any case);
        None when no category's words occur."""
        said = _spaced(text, language)
        scores: Counter[str] = Counter()
        for name, category in self.categories.items():
            for word in category.words.get(language, []):
                scores[name] += said.count(_spaced(word, language))
        best = scores.most_common(1)
        return best[0][0] if best and best[0][1] > 0 else None


def _spaced(text: str, language: str) -> str:
    """Words only, lower case, one space around each: a phrase is found as whole words."""
    if language == "tr":  # Turkish dotted and dotless i: "İ" lowers to "i", "I" to "ı"
        text = text.replace("İ", "i").replace("I", "ı")
    return " " + " ".join(re.findall(r"\w+", text.lower())) + " "


def load_tickets(path: Path) -> TicketsConfig:
    data = read_toml(path, TicketsConfigError)
    try:
        return TicketsConfig.model_validate(data)
    except ValidationError as exc:
        raise TicketsConfigError(f"{path}: {describe_error(exc.errors()[0])}") from None
