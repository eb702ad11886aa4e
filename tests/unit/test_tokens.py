"""Token registry and exact amount parsing: what clients may type, and what they get back."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.tokens import (
    BONK,
    DEFAULT_TOKENS,
    MAX_BASE_UNITS,
    SOL,
    USDC,
    USDT,
    InvalidAmount,
    Token,
    TokenRegistry,
    UnknownToken,
    decimal_ratio,
    format_amount,
    parse_amount,
    unit_price,
)

WSOL_MINT = "So11111111111111111111111111111111111111112"
registry = TokenRegistry.default()
tokens = st.sampled_from(DEFAULT_TOKENS)


def test_sol_and_wsol_resolve_to_the_wrapped_sol_mint_with_nine_decimals() -> None:
    for name in ("SOL", "sol", "WSOL", "wSol", WSOL_MINT):
        token = registry.resolve(name)
        assert (token.mint, token.decimals) == (WSOL_MINT, 9)


def test_stablecoins_resolve_to_their_mainnet_mints() -> None:
    usdc = Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
    usdt = Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6)
    assert (registry.resolve("usdc"), registry.resolve("USDT")) == (usdc, usdt)


def test_the_registry_holds_at_least_three_more_spl_tokens_with_real_decimals() -> None:
    decimals = {token.symbol: token.decimals for token in registry}
    assert {"BONK": 5, "JUP": 6, "RAY": 6, "mSOL": 9}.items() <= decimals.items()
    assert len(decimals.keys() - {"SOL", "USDC", "USDT"}) >= 3


def test_mints_match_exactly_because_base58_is_case_sensitive() -> None:
    assert registry.resolve(USDC.mint) == USDC
    with pytest.raises(UnknownToken):
        registry.resolve(USDC.mint.lower())


@pytest.mark.parametrize("name", ["DOGE", "", "So1111", " SOL"])
def test_unknown_tokens_raise_a_named_error(name: str) -> None:
    with pytest.raises(UnknownToken, match="unknown token"):
        registry.resolve(name)


def test_a_registry_refuses_duplicate_mints() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        TokenRegistry([SOL, Token("SOL2", SOL.mint, 9)])


@pytest.mark.parametrize(
    ("text", "token", "units"),
    [
        ("1", SOL, 1_000_000_000),
        ("1.5", SOL, 1_500_000_000),
        ("0.000000001", SOL, 1),
        ("1.000000", USDC, 1_000_000),
        ("007.25", USDC, 7_250_000),  # leading zeros are still plain digits
        ("18446744073.709551615", SOL, MAX_BASE_UNITS),
        ("12345.67891", BONK, 1_234_567_891),
    ],
)
def test_plain_decimal_strings_convert_exactly_to_base_units(
    text: str, token: Token, units: int
) -> None:
    assert parse_amount(text, token) == units


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "is empty"),
        ("-1", "has a sign"),
        ("+1", "has a sign"),
        ("-0", "has a sign"),
        ("1e3", "exponent"),
        ("1E-3", "exponent"),
        ("5_000", "digit separator"),
        ("5,000", "digit separator"),
        (" 5", "whitespace"),
        ("5\n", "whitespace"),
        ("1 000", "whitespace"),
        ("1.", "not a plain decimal"),
        (".5", "not a plain decimal"),
        ("1.2.3", "not a plain decimal"),
        ("NaN", "not a plain decimal"),
        ("Infinity", "not a plain decimal"),
        ("0x10", "not a plain decimal"),
        ("\u0661", "not a plain decimal"),  # ARABIC-INDIC DIGIT ONE: int() would accept it
        ("9" * 65, "longer than 64"),
        ("0", "greater than zero"),
        ("0.000", "greater than zero"),
        ("1.0000001", "7 fractional digits; USDC allows at most 6"),
        ("1.0000000", "7 fractional digits; USDC allows at most 6"),
        ("18446744073709.551616", "exceeds the largest USDC amount"),
    ],
)
def test_anything_else_is_rejected_with_a_message_naming_the_problem(text: str,
                                                                     problem: str) -> None:
    with pytest.raises(InvalidAmount, match=problem.replace(".", r"\.").replace("+", r"\+")):
        parse_amount(text, USDC)


@pytest.mark.parametrize("value", [1.5, Decimal("1.5"), 15, None])
def test_only_strings_are_parsed_so_no_float_precision_is_lost_first(value: object) -> None:
    with pytest.raises(InvalidAmount, match="decimal string"):
        parse_amount(value, USDC)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("units", "token", "text"),
    [(0, SOL, "0"), (1, SOL, "0.000000001"), (1_500_000_000, SOL, "1.5"),
     (185_000_000, USDC, "185"), (1_000_001, USDT, "1.000001"), (100_000, BONK, "1")],
)
def test_format_amount_is_exact_without_needless_zeros(units: int, token: Token, text: str) -> None:
    assert format_amount(units, token) == text


@given(token=tokens, units=st.integers(min_value=1, max_value=MAX_BASE_UNITS))
def test_format_then_parse_round_trips_every_u64_amount(token: Token, units: int) -> None:
    assert parse_amount(format_amount(units, token), token) == units


@given(token=tokens, whole=st.from_regex(r"[0-9]{1,12}", fullmatch=True),
       fraction=st.none() | st.from_regex(r"[0-9]{1,12}", fullmatch=True))
def test_the_strict_grammar_is_accepted_exactly_when_precise_enough_and_positive(
    token: Token, whole: str, fraction: str | None
) -> None:
    text = whole if fraction is None else f"{whole}.{fraction}"
    expected = Decimal(text) * 10**token.decimals
    acceptable = len(fraction or "") <= token.decimals and 0 < expected <= MAX_BASE_UNITS
    try:
        units = parse_amount(text, token)
    except InvalidAmount:
        assert not acceptable
    else:
        assert acceptable and units == expected


@given(text=st.text(max_size=30))
def test_arbitrary_text_parses_to_a_positive_amount_or_raises_invalid_amount(text: str) -> None:
    try:
        units = parse_amount(text, USDC)
    except InvalidAmount:
        return
    assert 0 < units <= MAX_BASE_UNITS
    assert Decimal(format_amount(units, USDC)) == Decimal(text)


def test_unit_price_is_token_out_per_one_token_in_in_human_units() -> None:
    assert unit_price(2_000_000_000, SOL, 370_000_000, USDC) == Decimal("185")
    sol_per_usdc = unit_price(185_000_000, USDC, 1_000_000_000, SOL)
    assert sol_per_usdc == Decimal("0.0054054054054054054")  # 1/185, truncated, never rounded up


@given(numerator=st.integers(min_value=0, max_value=10**40),
       denominator=st.integers(min_value=1, max_value=10**40))
def test_decimal_ratio_truncates_to_eighteen_significant_digits(numerator: int,
                                                                 denominator: int) -> None:
    ratio = decimal_ratio(numerator, denominator)
    exact = Decimal(numerator) / Decimal(denominator)  # 28 digits: enough to check 18
    assert ratio <= exact
    assert exact - ratio <= exact * Decimal("1e-17")
    assert len(ratio.as_tuple().digits) <= 18


def test_a_listed_token_is_learned_by_symbol_and_mint_and_a_known_one_changes_nothing() -> None:
    registry = TokenRegistry.default()
    wif = Token("WIF7", "EKpQGSJtjMFqKZ9KQanSqYXRcF8fBopzLHYxdM65zcjm", 6)
    registry.learn([wif, Token("SOL", SOL.mint, 9)])
    assert registry.resolve("wif7") == registry.resolve(wif.mint) == wif
    assert registry.resolve("SOL") == SOL and len(registry) == len(TokenRegistry.default()) + 1


def test_a_learned_token_whose_symbol_is_taken_resolves_by_its_mint_only() -> None:
    registry = TokenRegistry.default()
    impostor = Token("USDC", "Fake1111111111111111111111111111111111111111", 6)
    registry.learn([impostor])
    assert registry.resolve("USDC") == USDC  # the first holder keeps the symbol
    assert registry.resolve(impostor.mint) == impostor
