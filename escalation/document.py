"""What a page says: the incident as a structured document (in the spirit of NENA EIDO: who,
what, where, how grave, links) for systems, and as a few sentences for people, Turkish first."""

from __future__ import annotations

from typing import Any

from escalation.models import Incident, Page

CATEGORIES: dict[str, dict[str, str]] = {
    "violence": {"tr": "şiddet", "en": "violence"},
    "violence_against_women": {"tr": "kadına yönelik şiddet", "en": "violence against women"},
    "child_abuse": {"tr": "çocuk istismarı", "en": "child abuse"},
    "child_protection": {"tr": "çocuk koruma", "en": "child protection"},
    "suicide_risk": {"tr": "intihar riski", "en": "suicide risk"},
    "weapons": {"tr": "silah", "en": "weapons"},
    "emergency": {"tr": "acil yardım", "en": "emergency"},
}
SEVERITIES = {
    "low": {"tr": "düşük", "en": "low"},
    "medium": {"tr": "orta", "en": "medium"},
    "high": {"tr": "yüksek", "en": "high"},
    "critical": {"tr": "kritik", "en": "critical"},
}


def document(incident: Incident, page: Page, links: dict[str, str]) -> dict[str, Any]:
    """The incident as receiving systems get it (JSON-ready)."""
    return {
        "id": incident.id,
        "time": incident.opened_at.isoformat(),
        "category": incident.category,
        "severity": str(incident.severity),
        "status": str(incident.status),
        "location": {"province": incident.province, "country": "TR"},
        "caller": {"number": incident.caller_number or None, "cannot_speak": incident.silent},
        "summary": incident.summary,
        "ticket": incident.ticket,
        "call_id": incident.call_id,
        "escalation": {"level": page.level, "loop": page.loop, "round": page.round, "target": page.target},
        "links": links,
    }


def text(incident: Incident, language: str, accept: str = "1", pass_on: str = "2") -> str:
    """The page for people: said by the voice page, written in SMS and e-mail."""
    lang = "tr" if language == "tr" else "en"
    category = CATEGORIES.get(incident.category, {}).get(lang, incident.category.replace("_", " "))
    severity = SEVERITIES.get(str(incident.severity), {}).get(lang, str(incident.severity))
    number = _spoken_number(incident.caller_number) or ("gizli" if lang == "tr" else "withheld")
    if lang == "tr":
        parts = [
            f"Alo yüz seksen üç acil durum bildirimi. Konu: {category}. Önem: {severity}.",
            f"Arayan numara: {number}.",
            f"İl: {incident.province}." if incident.province else "",
            "Arayan konuşamıyor." if incident.silent else "",
            f"Özet: {incident.summary}." if incident.summary else "",
            f"Başvuru numarası: {incident.ticket}." if incident.ticket else "",
            f"Kabul etmek için {_digit(accept, 'tr')}, "
            f"bir sonraki ekibe aktarmak için {_digit(pass_on, 'tr')} basın.",
        ]
    else:
        parts = [
            f"Alo one eight three emergency page. Subject: {category}. Severity: {severity}.",
            f"Caller number: {number}.",
            f"Province: {incident.province}." if incident.province else "",
            "The caller cannot speak." if incident.silent else "",
            f"Summary: {incident.summary}." if incident.summary else "",
            f"Case number: {incident.ticket}." if incident.ticket else "",
            f"Press {_digit(accept, 'en')} to accept, {_digit(pass_on, 'en')} to pass it to the next team.",
        ]
    return " ".join(p for p in parts if p)


def _spoken_number(number: str) -> str:
    """The digits apart, so a synthesised voice reads them one by one."""
    return " ".join(c for c in number if c.isdigit())


def _digit(digit: str, language: str) -> str:
    words = {
        "tr": ["sıfıra", "bire", "ikiye", "üçe", "dörde", "beşe", "altıya", "yediye", "sekize", "dokuza"],
        "en": ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"],
    }[language]
    return words[int(digit)] if digit.isdigit() else digit
