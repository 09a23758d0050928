"""The urgent-words matcher: normalisation, the shipped rules (positive and false-friend cases in
Turkish, English and Arabic), negation, the pattern syntax and config validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from escalation.errors import EscalationConfigError
from escalation.keywords import Match, Matcher, load_keywords, normalise
from escalation.models import Severity

SHIPPED = Path(__file__).resolve().parents[3] / "config" / "keywords.toml"


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return load_keywords(SHIPPED)


def rules(matcher: Matcher, text: str, language: str) -> set[str]:
    return {m.rule_id for m in matcher.match(text, language)}


def categories(matcher: Matcher, text: str, language: str) -> dict[str, Severity]:
    """The highest severity matched per category."""
    found: dict[str, Severity] = {}
    for m in matcher.match(text, language):
        if m.category not in found or m.severity.rank > found[m.category].rank:
            found[m.category] = m.severity
    return found


# --- normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize("written", ["bıçak", "BIÇAK", "bicak", "bıcak", "Bıçak", "BICAK"])
def test_turkish_spellings_of_knife_fold_to_one_token(written: str) -> None:
    assert normalise(written, "tr") == ["bicak"]


def test_turkish_dotted_capital_i_and_circumflex() -> None:
    assert normalise("İSTİSMAR Kâğıt", "tr") == ["istismar", "kagit"]


def test_apostrophe_splits_turkish_suffix_and_digits_stay() -> None:
    assert normalise("Ali'nin 112'yi aradım.", "tr") == ["ali", "nin", "112", "yi", "aradim"]


def test_english_contractions_join_and_punctuation_goes() -> None:
    assert normalise("I don\u2019t know!!! Knife, now.", "en") == ["i", "dont", "know", "knife", "now"]


def test_arabic_tashkeel_alef_forms_ta_marbuta_alef_maqsura_digits() -> None:
    assert normalise("سِكِّين أنا إلى آخر مدرسة على ١١٢", "ar") == [
        "سكين",
        "انا",
        "الي",
        "اخر",
        "مدرسه",
        "علي",
        "112",
    ]


# --- the shipped rules: the sentences proved through the telephone path (FACTS.md) --------------


def test_facts_sentence_husband_knife_threat(matcher: Matcher) -> None:
    text = "My husband has a knife and he is threatening to kill me. Please send help."
    found = categories(matcher, text, "en")
    assert found["weapons"] is Severity.critical
    assert found["violence"] is Severity.critical
    knife = next(m for m in matcher.match(text, "en") if m.rule_id == "en_weapon")
    assert knife.evidence == ("knife",)
    assert knife.positions == (4,)


def test_facts_sentence_neighbour_beating_child(matcher: Matcher) -> None:
    text = "My neighbour is beating his child. Please send help quickly."
    found = categories(matcher, text, "en")
    assert found["child_abuse"] is Severity.high
    child = next(m for m in matcher.match(text, "en") if m.category == "child_abuse")
    assert child.evidence == ("beating", "child")
    assert child.positions == (3, 5)


# --- positives -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Kocam beni her gün dövüyor", "tr_beating"),
        ("babam annemi dövüyo", "tr_beating"),  # spoken form, as Vosk writes it
        ("Bana VURDU", "tr_beating"),
        ("elinde bıçakla geldi", "tr_weapon"),
        ("BIÇAĞINI çekti", "tr_weapon"),
        ("bicagi var elinde", "tr_weapon"),  # no diacritics
        ("evde silahı var", "tr_weapon"),
        ("tabancayı gösterdi", "tr_weapon"),
        ("seni öldüreceğim dedi", "tr_kill_threat"),
        ("beni öldürcem diyor", "tr_kill_threat"),
        ("beni tehdit ediyor", "tr_threat"),
        ("komşu çocuğunu dövüyor", "tr_child_abuse"),
        ("adam çocuğa şiddet uyguluyor", "tr_child_abuse"),
        ("dövüyor kızını", "tr_child_abuse"),
        ("öğretmen istismar ediyor", "tr_child_abuse"),
        ("intihar etmeyi düşünüyorum", "tr_suicide"),
        ("kendimi öldüreceğim", "tr_suicide"),
        ("Artık yaşamak istemiyorum", "tr_no_will_to_live"),
        ("canıma kıyacağım", "tr_suicide"),
        ("my husband hits me every day", "en_beating"),  # Vosk: lower case, no punctuation
        ("My father beats me.", "en_beating"),
        ("He's got a GUN", "en_weapon"),
        ("there are knives everywhere", "en_weapon"),
        ("he said he will kill me", "en_kill_threat"),
        ("I'm going to kill myself tonight", "en_suicide"),
        ("I want to end my life", "en_suicide"),
        ("I just want to take my own life", "en_suicide"),
        ("I don't want to live anymore", "en_no_will_to_live"),
        ("I do not want to be alive", "en_no_will_to_live"),
        ("the kids are being abused", "en_child_abuse"),
        ("He doesn't stop hitting me", "en_beating"),  # "stop" ends the negation's reach
        ("No. He has a knife.", "en_weapon"),  # the negation is in another clause
        ("زوجي يضربني كل يوم", "ar_beating"),
        ("سأقتل نفسي", "ar_suicide"),  # hamza on the alef
        ("معه السِّكِّين", "ar_weapon"),  # article and tashkeel
        ("الأب يضرب ابنه", "ar_child_abuse"),
        ("سوف يقتلني", "ar_kill_threat"),
    ],
)
def test_rule_matches(matcher: Matcher, text: str, rule: str) -> None:
    assert rule in rules(matcher, text, rule[:2])  # rule ids start with their language


def test_kitchen_knife_used_to_threaten_still_matches(matcher: Matcher) -> None:
    found = rules(matcher, "Kocam mutfak bıçağıyla beni tehdit etti", "tr")
    assert {"tr_weapon", "tr_threat", "tr_armed_threat"} <= found


def test_first_unnegated_occurrence_is_the_evidence(matcher: Matcher) -> None:
    [gun] = [m for m in matcher.match("He has no knife but he has a gun", "en") if m.rule_id == "en_weapon"]
    assert gun.evidence == ("gun",)
    assert gun.positions == (8,)


@pytest.mark.parametrize(
    ("text", "first"), [("he has a knife and a gun", "knife"), ("he has a gun and a knife", "gun")]
)
def test_earliest_phrase_of_a_rule_is_the_evidence(matcher: Matcher, text: str, first: str) -> None:
    [weapon] = [m for m in matcher.match(text, "en") if m.rule_id == "en_weapon"]
    assert weapon.evidence == (first,)


def test_one_match_per_rule(matcher: Matcher) -> None:
    found = [m.rule_id for m in matcher.match("knife knife gun knife", "en")]
    assert found.count("en_weapon") == 1


# --- negatives: false friends and negation ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language", "rule"),
    [
        ("Gunther called me about the pension", "en", "en_weapon"),
        ("it has begun", "en", "en_weapon"),
        ("I went to the mall to kill time", "en", "en_kill_threat"),
        ("you are killing it", "en", "en_kill_threat"),
        ("my back is killing me", "en", "en_kill_threat"),
        ("we need a knife and fork", "en", "en_weapon"),
        ("I ordered a kitchen knife set and it arrived broken", "en", "en_weapon"),
        ("I applied for a gun licence last year", "en", "en_weapon"),
        ("I attended suicide prevention training", "en", "en_suicide"),
        ("He didn't hit me", "en", "en_beating"),
        ("he never hits me", "en", "en_beating"),
        ("he doesn't have a knife", "en", "en_weapon"),
        ("I don't want to kill myself", "en", "en_suicide"),
        ("I don't want to live with him anymore", "en", "en_no_will_to_live"),
        ("mutfak bıçağı seti sipariş ettim kırık geldi", "tr", "tr_weapon"),
        ("silah ruhsatı başvurum ne oldu", "tr", "tr_weapon"),
        ("evde bıçak yok", "tr", "tr_weapon"),
        ("beni dövmedi", "tr", "tr_beating"),
        ("döviz kuru çok yüksek", "tr", "tr_beating"),
        ("bu konuya vurgu yaptı", "tr", "tr_beating"),
        ("kimseyi öldürmeyeceğim", "tr", "tr_kill_threat"),
        ("kendimi öldürmeyeceğim", "tr", "tr_suicide"),
        ("beni tehdit etmedi", "tr", "tr_threat"),
        ("şiddetli yağmur yağıyor", "tr", "tr_violence"),
        ("intihar önleme eğitimi", "tr", "tr_suicide"),
        ("onunla yaşamak istemiyorum", "tr", "tr_no_will_to_live"),
        ("kendimi öldüreceğim", "tr", "tr_kill_threat"),  # suicide risk, not a threat to others
        ("لم يضربني", "ar", "ar_beating"),
    ],
)
def test_rule_does_not_match(matcher: Matcher, text: str, language: str, rule: str) -> None:
    assert rule not in rules(matcher, text, language)


def test_harmless_lines_match_nothing(matcher: Matcher) -> None:
    assert matcher.match("Merhaba, elektrik faturam hakkında arıyorum", "tr") == []
    assert matcher.match("Hello, I am calling about my disability pension", "en") == []


def test_unknown_language_matches_nothing(matcher: Matcher) -> None:
    assert matcher.match("knife", "de") == []
    assert matcher.languages == {"tr", "en", "ar"}


def test_match_is_frozen(matcher: Matcher) -> None:
    [found] = [m for m in matcher.match("knife", "en")]
    assert isinstance(found, Match)
    with pytest.raises(dataclasses.FrozenInstanceError):
        found.severity = Severity.low  # type: ignore[misc]


# --- the pattern syntax, on small configs -------------------------------------------------------


def load(tmp_path: Path, text: str) -> Matcher:
    path = tmp_path / "keywords.toml"
    path.write_text('categories = ["weapons", "violence"]\n' + text, encoding="utf-8")
    return load_keywords(path)


def test_exact_and_prefix_marks(tmp_path: Path) -> None:
    m = load(
        tmp_path,
        """
[languages.tr]
[languages.en]
match = "exact"
[rules.gun]
language = "en"
category = "weapons"
severity = "high"
words = ["gun", "stab*"]
[rules.sis]
language = "tr"
category = "weapons"
severity = "low"
words = ["=şiş"]
""",
    )
    assert rules(m, "a gun", "en") == {"gun"}
    assert rules(m, "gunther", "en") == set()
    assert rules(m, "he stabbed her", "en") == {"gun"}
    assert rules(m, "şiş", "tr") == {"sis"}
    assert rules(m, "şişe", "tr") == set()  # a bottle, not a skewer


def test_phrase_order_and_gap(tmp_path: Path) -> None:
    m = load(
        tmp_path,
        """
[languages.en]
match = "exact"
gap = 1
[rules.kill_me]
language = "en"
category = "violence"
severity = "critical"
words = ["kill me"]
""",
    )
    assert rules(m, "kill me", "en") == {"kill_me"}
    assert rules(m, "kill all me", "en") == {"kill_me"}
    assert rules(m, "kill all of me", "en") == set()
    assert rules(m, "me kill", "en") == set()


def test_not_words_negations_after_and_proclitics(tmp_path: Path) -> None:
    m = load(
        tmp_path,
        """
[languages.tr]
negations_after = ["değil"]
[languages.ar]
proclitics = ["ال", "و"]
[rules.vur]
language = "tr"
category = "violence"
severity = "high"
words = ["vur"]
not_words = ["vurgu"]
[rules.sikin]
language = "ar"
category = "weapons"
severity = "high"
words = ["سكين"]
""",
    )
    assert rules(m, "vurdu", "tr") == {"vur"}
    assert rules(m, "vurgu", "tr") == set()
    assert rules(m, "vurdu değil", "tr") == set()
    assert rules(m, "vurdu, değil mi", "tr") == {"vur"}  # "değil" opens another clause
    assert rules(m, "والسكين", "ar") == {"sikin"}


# --- configuration errors -----------------------------------------------------------------------

RULE = """
[languages.en]
[rules.knife]
language = "en"
category = "weapons"
severity = "high"
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("words = []", "rules.knife.words: must not be empty"),
        ('words = ["knife"]\nseverity_x = 1', "rules.knife.severity_x: unknown key"),
        (
            'words = ["=ki"]\n[rules.k2]\nlanguage = "de"\n'
            'category = "weapons"\nseverity = "low"\nwords = ["x"]',
            "rules.k2.language: unknown language 'de'",
        ),
        ('words = ["ki"]', "rules.knife.words[0]: 'ki': prefix 'ki' is too short"),
        (
            'words = ["knife", "kitchen knife|big-knife"]',
            "rules.knife.words[1]: 'knife|big-knife': each alternative",
        ),
        ('words = ["knife "]\n[rules.knife]\nlanguage = "en"', "not valid TOML"),
    ],
)
def test_config_errors_name_file_key_and_reason(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "keywords.toml"
    path.write_text('categories = ["weapons"]\n' + RULE + extra + "\n", encoding="utf-8")
    with pytest.raises(EscalationConfigError) as caught:
        load_keywords(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_empty_words_message_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "keywords.toml"
    path.write_text('categories = ["weapons"]\n' + RULE + "words = []\n", encoding="utf-8")
    with pytest.raises(
        EscalationConfigError, match=r"^.*keywords\.toml: rules\.knife\.words: must not be empty$"
    ):
        load_keywords(path)


@pytest.mark.parametrize(
    ("severity", "category", "message"),
    [
        ("urgent", "weapons", "rules.knife.severity: Input should be 'low', 'medium', 'high' or 'critical'"),
        ("high", "theft", "rules.knife.category: unknown category 'theft'"),
    ],
)
def test_unknown_severity_and_category(tmp_path: Path, severity: str, category: str, message: str) -> None:
    path = tmp_path / "keywords.toml"
    rule = (
        f'[languages.en]\n[rules.knife]\nlanguage = "en"\ncategory = "{category}"\nseverity = "{severity}"\n'
    )
    path.write_text('categories = ["weapons"]\n' + rule + 'words = ["knife"]\n', encoding="utf-8")
    with pytest.raises(EscalationConfigError) as caught:
        load_keywords(path)
    assert message in str(caught.value)
