from datetime import date

from hypothesis import given, strategies as st

from engine.codes import (USCC_ALPHABET, citizen_id_check_char, code_kind, is_valid_citizen_id, is_valid_uscc,
                          mask_citizen_id, uscc_check_char)


def test_worked_examples_from_the_standards():
    assert is_valid_uscc("91350100M000100Y43")
    assert is_valid_citizen_id("11010519491231002X")


def test_a_changed_check_character_is_rejected():
    assert not is_valid_uscc("91350100M000100Y44")
    assert not is_valid_citizen_id("110105194912310021")


def test_letters_outside_the_alphabet_and_wrong_lengths_are_rejected():
    assert not is_valid_uscc("91350100M000100Y4")
    assert not is_valid_uscc("9135010OM000100Y43")  # letter O is not in the alphabet
    assert not is_valid_citizen_id("11010519491331002X")  # month 13
    assert not is_valid_citizen_id(None)


@given(st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17).filter(lambda s: s[2:8].isdigit()),
       st.sampled_from(USCC_ALPHABET))
def test_uscc_only_its_own_check_character_is_valid(body, other):
    check = uscc_check_char(body)
    assert is_valid_uscc(body + check)
    assert is_valid_uscc(body + other) == (other == check)


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31)), st.integers(0, 999))
def test_citizen_id_check(day, seq):
    body = f"511702{day:%Y%m%d}{seq:03d}"
    code = body + citizen_id_check_char(body)
    assert is_valid_citizen_id(code)
    assert code_kind(code) == "natural_person"


def test_code_kind_reads_authority_and_type():
    def make(prefix):
        body = prefix + "511700" + "123456789"
        return body + uscc_check_char(body)
    assert code_kind(make("91")) == "legal_person"
    assert code_kind(make("92")) == "individual_business"
    assert code_kind(make("51")) == "other_org"
    assert code_kind("nonsense") is None


def test_masking_hides_the_birth_date():
    assert mask_citizen_id("11010519491231002X") == "110105********002X"
