"""PII redaction of written (Whisper) and spoken (Vosk) transcripts, Turkish and English."""

from __future__ import annotations

import pytest

from transcripts.redaction import Redacted, Redactor, is_phone, is_tckn, is_tr_iban

ALL = Redactor(["tckn", "phone", "iban", "email"])
TCKN = "[KİMLİK NO/ID NUMBER]"
PHONE = "[TELEFON/PHONE]"
IBAN = "[IBAN]"
EMAIL = "[E-POSTA/E-MAIL]"
GOOD_IBAN = "TR330006100519786457841326"
BAD_IBAN = "TR330006100519786457841327"  # last digit changed


def tckn(first9: str) -> str:
    """A valid ID number: the two check digits computed by the rule, independently of the module."""
    d = [int(c) for c in first9]
    d10 = (sum(d[0:9:2]) * 7 - sum(d[1:8:2])) % 10
    d11 = (sum(d) + d10) % 10
    return f"{first9}{d10}{d11}"


def bad(number: str) -> str:
    """The same number with a wrong last check digit."""
    return number[:-1] + str((int(number[-1]) + 1) % 10)


# --- TCKN ----------------------------------------------------------------------------------------


def test_tckn_checksum() -> None:
    assert tckn("100000001") == "10000000146"
    for first9 in ("100000001", "123456789", "987654321", "312879645"):
        assert is_tckn(tckn(first9))
        assert not is_tckn(bad(tckn(first9)))
    assert not is_tckn("02345678950")  # first digit 0
    assert not is_tckn("1234567895")  # 10 digits


@pytest.mark.parametrize("number", ["10000000146", tckn("123456789"), tckn("987654321")])
def test_valid_tckn_is_redacted(number: str) -> None:
    assert ALL.redact(f"kimlik numaram {number} efendim") == Redacted(
        f"kimlik numaram {TCKN} efendim", ("tckn",)
    )


def test_bad_checksum_is_no_id() -> None:
    text = f"kimlik numaram {bad('10000000146')} efendim"
    assert ALL.redact(text) == Redacted(text, ())


def test_eleven_digits_with_bad_checksum_can_be_a_phone() -> None:
    assert not is_tckn("05321234567")
    assert ALL.redact("05321234567") == Redacted(PHONE, ("phone",))


def test_spoken_tckn_turkish() -> None:
    assert tckn("123456789") == "12345678950"
    spoken = "kimlik numaram on iki otuz dört elli altı yetmiş sekiz doksan beş sıfır tamam"
    assert ALL.redact(spoken) == Redacted(f"kimlik numaram {TCKN} tamam", ("tckn",))
    digit_by_digit = "bir sıfır sıfır sıfır sıfır sıfır sıfır sıfır bir dört altı"
    assert ALL.redact(digit_by_digit).found == ("tckn",)


def test_spoken_tckn_english() -> None:
    spoken = "my id is one oh oh oh oh oh oh oh one four six"
    assert ALL.redact(spoken) == Redacted(f"my id is {TCKN}", ("tckn",))
    wrong = "my id is one oh oh oh oh oh oh oh one four seven"
    assert ALL.redact(wrong) == Redacted(wrong, ())


# --- phones --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [
        "0 (532) 123 45 67",
        "+90 532 123-45-67",
        "+905321234567",
        "905321234567",
        "05321234567",
        "5321234567",
        "0532 123 45 67",
        "0532.123.45.67",
        "(0532) 123 45 67",
        "0 312 123 45 67",
        "(0212) 555-12-12",
    ],
)
def test_written_phones(number: str) -> None:
    assert ALL.redact(f"beni {number} numaradan arayın") == Redacted(
        f"beni {PHONE} numaradan arayın", ("phone",)
    )


def test_phone_rules() -> None:
    assert is_phone("5321234567") and is_phone("05321234567") and is_phone("905321234567")
    assert is_phone("2121234567") and is_phone("4441234567")
    assert not is_phone("6321234567")  # no area code starts with 6
    assert not is_phone("15321234567")  # 11 digits need the 0
    assert not is_phone("1234567")


@pytest.mark.parametrize(
    "text", ["112'yi aradım", "155 polis, 183 sosyal destek", "call 112 now", "tel 2123456"]
)
def test_short_and_local_numbers_are_kept(text: str) -> None:
    assert ALL.redact(text) == Redacted(text, ())


def test_short_number_next_to_a_phone_is_kept() -> None:
    assert ALL.redact("183, 0532 123 45 67") == Redacted(f"183, {PHONE}", ("phone",))


def test_number_glued_to_a_phone_is_no_phone() -> None:
    # The phone must start on a group edge: 1 followed by 10 digits written together is not one.
    assert ALL.redact("15321234567") == Redacted("15321234567", ())


@pytest.mark.parametrize(
    "spoken",
    [
        "sıfır beş yüz otuz iki yüz yirmi üç kırk beş altmış yedi",
        "beş üç iki bir iki üç dört beş altı yedi",
        "sifir bes yuz otuz iki yuz yirmi uc kirk bes altmis yedi",  # ASCII-folded
        "artı doksan beş yüz otuz iki yüz yirmi üç kırk beş altmış yedi",
        "five three two, one two three, four five, six seven",
        "oh five three two one two three four five six seven",
        "zero five three two one two three four five six seven",
        "five hundred thirty two, one twenty three, forty five, sixty seven",
    ],
)
def test_spoken_phones(spoken: str) -> None:
    assert ALL.redact(f"numaram {spoken} tamam mı") == Redacted(f"numaram {PHONE} tamam mı", ("phone",))


def test_double_and_triple() -> None:
    # 0 5 55 1 2 3 4 444
    assert ALL.redact("oh five double five one two three four triple four").found == ("phone",)
    assert ALL.redact("oh five five one two three four").found == ()  # 7 digits: too short


def test_turkish_plus_is_part_of_the_phone() -> None:
    assert ALL.redact("artı doksan beş yüz otuz iki yüz yirmi üç kırk beş altmış yedi").text == PHONE


def test_tckn_wins_a_tie_with_an_overlapping_phone() -> None:
    # "1 0 5 3 2 1 2 3 4 1 2" is an ID; "0 5 3 2 1 2 3 4 1 2 7", as long, is a phone.
    digits = f"{tckn('105321234')}7"
    assert digits == "105321234127" and is_phone(digits[1:])
    assert ALL.redact(" ".join(digits)) == Redacted(f"{TCKN} 7", ("tckn",))


def test_two_phones_in_one_run() -> None:
    assert ALL.redact("05321234567 05331234567") == Redacted(f"{PHONE} {PHONE}", ("phone", "phone"))


def test_parenthesis_kept_in_pairs() -> None:
    assert ALL.redact("(0532) 123 45 67").text == PHONE
    assert ALL.redact("ara (0532 123 45 67)").text == f"ara ({PHONE})"


# --- IBAN ----------------------------------------------------------------------------------------


def test_iban_check() -> None:
    assert is_tr_iban(GOOD_IBAN[2:])
    assert not is_tr_iban(BAD_IBAN[2:])


@pytest.mark.parametrize(
    "iban",
    [
        GOOD_IBAN,
        GOOD_IBAN.lower(),
        "TR33 0006 1005 1978 6457 8413 26",
        "tr33 0006 1005 1978 6457 8413 26",
        "TR 33 0006 1005 1978 6457 8413 26",
    ],
)
def test_written_iban(iban: str) -> None:
    assert ALL.redact(f"IBAN: {iban}, teşekkürler") == Redacted(f"IBAN: {IBAN}, teşekkürler", ("iban",))


@pytest.mark.parametrize("iban", [BAD_IBAN, "TR33 0006 1005 1978 6457 8413 27"])
def test_bad_iban_is_kept_whole(iban: str) -> None:
    # Not an IBAN, and no phone is cut out of it either ("33 0006 1005" is 10 digits from 3).
    text = f"IBAN: {iban}, teşekkürler"
    assert ALL.redact(text) == Redacted(text, ())


def test_spoken_iban() -> None:
    # 33 0006 1005 1978 6457 8413 26
    turkish = (
        "te re otuz üç sıfır sıfır sıfır altı on sıfır beş on dokuz yetmiş sekiz altmış dört elli yedi"
        " seksen dört on üç yirmi altı"
    )
    assert ALL.redact(f"ibanım {turkish}") == Redacted(f"ibanım {IBAN}", ("iban",))
    english = "t r three three oh oh oh six one oh oh five one nine seven eight six four five seven"
    assert ALL.redact(f"{english} eight four one three two six").text == IBAN
    assert ALL.redact(f"{english} eight four one three two seven").found == ()


def test_iban_then_phone_in_one_run() -> None:
    text = f"{GOOD_IBAN}, 0532 123 45 67"
    assert ALL.redact(text) == Redacted(f"{IBAN}, {PHONE}", ("iban", "phone"))


# --- e-mail --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address", ["ali.veli@gmail.com", "ali_veli+destek@alo183.gov.tr", "John.Smith@Example.co.uk"]
)
def test_written_email(address: str) -> None:
    assert ALL.redact(f"adresim {address}.") == Redacted(f"adresim {EMAIL}.", ("email",))


@pytest.mark.parametrize(
    ("spoken", "redacted"),
    [
        ("mailim ali nokta veli et gmail nokta com", f"mailim {EMAIL}"),
        (
            "adresim ali nokta veli et hotmail nokta com nokta tr, teşekkürler",
            f"adresim {EMAIL}, teşekkürler",
        ),
        ("ali alt çizgi veli kuyruklu a alo nokta gov nokta tr", EMAIL),
        ("ayşe yirmi üç et gmail nokta com", EMAIL),
        ("my email is john dot smith at example dot com thanks", f"my email is {EMAIL} thanks"),
        ("write to info at example dot org", f"write to {EMAIL}"),
        ("john.smith at example.com", EMAIL),
    ],
)
def test_spoken_email(spoken: str, redacted: str) -> None:
    assert ALL.redact(spoken) == Redacted(redacted, ("email",))


@pytest.mark.parametrize(
    "text",
    [
        "I was at home at ten",
        "we met at school. Net income rose",
        "look at google dot com",
        "the meeting at ten dot thirty",  # no top-level domain at the end
        "sitemizi ziyaret et alo nokta gov nokta tr",
        "dikkat et lütfen",
        "ali et yemeyi sever",
    ],
)
def test_at_in_ordinary_sentences(text: str) -> None:
    assert ALL.redact(text) == Redacted(text, ())


# --- the rest ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "yarın saat on ikide geleceğim",
        "I was at home at ten",
        "iki bin yirmi dört yılında üç çocuğum vardı",
        "toplantı 12.05.2024 saat 10:30'da",
        "one two three, testing",
        "",
    ],
)
def test_ordinary_sentences_unchanged(text: str) -> None:
    assert ALL.redact(text) == Redacted(text, ())


def test_text_outside_findings_kept_byte_for_byte() -> None:
    text = "  Merhaba,\tnumaram: 0532 123 45 67 ;  mailim ali@x.com\n İyi günler!  "
    expected = f"  Merhaba,\tnumaram: {PHONE} ;  mailim {EMAIL}\n İyi günler!  "
    assert ALL.redact(text) == Redacted(expected, ("phone", "email"))


def test_found_in_order_of_appearance() -> None:
    text = f"mail ali@x.com, tel 05321234567, iban {GOOD_IBAN}, tc 10000000146, tel 0212 555 12 12"
    result = ALL.redact(text)
    assert result.found == ("email", "phone", "iban", "tckn", "phone")
    assert result.text == f"mail {EMAIL}, tel {PHONE}, iban {IBAN}, tc {TCKN}, tel {PHONE}"


def test_kinds_selection() -> None:
    text = f"mail ali@x.com, tel 05321234567, iban {GOOD_IBAN}, tc 10000000146"
    assert Redactor(["email"]).redact(text) == Redacted(
        f"mail {EMAIL}, tel 05321234567, iban {GOOD_IBAN}, tc 10000000146", ("email",)
    )
    assert Redactor(["phone"]).redact(text).found == ("phone",)
    assert Redactor(["tckn", "iban"]).redact(text).found == ("iban", "tckn")
    assert Redactor([]).redact(text) == Redacted(text, ())


def test_unselected_iban_still_hides_no_phone() -> None:
    text = "TR33 0006 1005 1978 6457 8413 26"
    assert Redactor(["phone"]).redact(text) == Redacted(text, ())


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="ssn"):
        Redactor(["ssn"])  # type: ignore[list-item]


def test_uppercase_and_dotted_capitals() -> None:
    assert ALL.redact("SIFIR BEŞ YÜZ OTUZ İKİ YÜZ YİRMİ ÜÇ KIRK BEŞ ALTMIŞ YEDİ").text == PHONE
