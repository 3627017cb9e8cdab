"""Names and short texts are kept as typed, minus what hides or reorders text (issue 12,
finding 11): a right-to-left override (U+202E) in "Acme<RLO>moc.elif" would show as another
name in every list, audit line and CSV, so ``accessd.inputs.parse_text`` refuses it and every
other bidi control and invisible control character, for every name that enters: a customer, a
person, a requester, a witness; through the CLI, the panel and the API alike (they all call
the same services)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from accessd.errors import InvalidInputError
from accessd.inputs import parse_text

BIDI_CONTROLS = [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)),
                 "\u200e", "\u200f", "\u061c"]
OTHER_INVISIBLE = ["\u0000", "\u0007", "\u001b", "\u007f", "\u200b", "\ufeff",
                   "\u00ad", "\U000e0001", "\ue000"]


@pytest.mark.parametrize("char", BIDI_CONTROLS + OTHER_INVISIBLE,
                         ids=lambda c: f"U+{ord(c):04X}")
def test_a_control_or_bidi_character_is_refused_saying_which_and_where(char: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_text("name", f"Acme{char}moc.elif", limit=200, what="the name")
    assert refused.value.field == "name"
    assert f"U+{ord(char):04X}" in refused.value.problem
    assert "at position 5" in refused.value.problem
    assert "type it again without it" in refused.value.problem


@pytest.mark.parametrize(
    "name",
    ["Zoë Ångström-Ñúñez", "محمد علي", "می\u200cخواهم", "王小明", "O'Brien",  # noqa: RUF001
     "Dr. Jan de Vries",
     "👩\u200d💻 Ops"],
)
def test_real_names_in_any_script_are_kept(name: str) -> None:
    assert parse_text("name", name, limit=200) == name


def test_white_space_runs_become_one_space_and_tabs_and_new_lines_with_them() -> None:
    assert parse_text("name", "  Ada\t\tLovelace\n", limit=200) == "Ada Lovelace"


@pytest.mark.parametrize(
    ("text", "says"),
    [("   ", "the name must not be empty"),
     ("x" * 201, "the name has 201 characters; at most 200 fit, so shorten it")],
)
def test_empty_and_too_long_are_plain_sentences(text: str, says: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_text("name", text, limit=200, what="the name")
    assert refused.value.problem == says


@given(st.text(max_size=50))
def test_whatever_is_kept_has_no_control_or_format_character_but_the_joiners(text: str) -> None:
    import unicodedata

    try:
        kept = parse_text("name", text, limit=200)
    except InvalidInputError:
        return
    assert all(unicodedata.category(c) not in {"Cc", "Cs", "Co", "Cn"} for c in kept)
    assert all(unicodedata.category(c) != "Cf" or c in "\u200c\u200d" for c in kept)
