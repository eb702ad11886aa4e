"""Routing: the best way to turn an amount of one token into another, and executing it.

Consumes a `Market` and an order's mints and amount; produces a `RoutingDecision` (every
quote considered, the chosen legs, and why) and, at execution time, what those legs really
yield against the market of that moment.

Candidates are, per venue, the direct pool and every two-hop path through a token both
sides trade against on that venue. A path stays on one venue, as a venue's own swap
instruction would (the shared `VenueQuote` names one venue per quote). The candidate with
the highest output after fees wins; then the best paths of the two best venues are tried
together as a split, the share of each found by a golden-section search on the (concave)
total output. A split is taken only when it beats the best single path by
`min_split_gain_bps`, because every extra leg costs a transaction's worth of compute.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal

from domain.market import Market
from domain.pools import InsufficientLiquidity, PoolSwap
from domain.quotes import RouteLeg, RoutingDecision, VenueQuote
from domain.tokens import Token

SPLIT_MIN_GAIN_BPS = 1
_GOLDEN = 618_034  # (sqrt(5) - 1) / 2, in millionths
_SEARCH_RESOLUTION = 1_000_000  # the split is searched to 1/1_000_000 of the amount (~30 steps)
_PROBE_PERCENT = 1  # share moved to the other venue to test whether a split can pay at all


class NoRoute(Exception):
    """Nothing in the market can swap this amount of token in into token out."""


@dataclass(frozen=True, slots=True)
class Path:
    """A way through one venue: the mints visited, first the token in, last the token out."""

    venue: str
    mints: tuple[str, ...]


def candidate_paths(market: Market, mint_in: str, mint_out: str) -> tuple[Path, ...]:
    """Direct and two-hop paths on every venue, direct first (cheaper at equal output)."""
    paths = []
    for venue in market.venues:
        if market.pool(venue, mint_in, mint_out) is not None:
            paths.append(Path(venue, (mint_in, mint_out)))
        middles = market.neighbors(venue, mint_in) & market.neighbors(venue, mint_out)
        paths.extend(Path(venue, (mint_in, mid, mint_out)) for mid in sorted(middles))
    return tuple(paths)


def quote_path(market: Market, path: Path, amount_in: int) -> VenueQuote:
    """What `path` pays for the whole amount. Raises InsufficientLiquidity if it cannot fill."""
    swaps = _swaps(market, path, amount_in)
    amount_out = swaps[-1].amount_out if len(swaps) == len(path.mints) - 1 else 0
    # Later hops charge fees in intermediate tokens: express them in token-in units at the
    # rate the path itself achieved up to that hop, so the quote's fee is one number.
    fee = sum(swap.fee * amount_in // swap.amount_in for swap in swaps)
    return VenueQuote(path.venue, amount_in, amount_out, fee, _compound_impact(swaps), path.mints)


def best_route(market: Market, token_in: str, token_out: str, amount_in: int, *,
               min_split_gain_bps: int = SPLIT_MIN_GAIN_BPS) -> RoutingDecision:
    """The highest output for `amount_in` of `token_in` (mints), with every quote considered."""
    if token_in == token_out:
        raise NoRoute("token in and token out are the same token")
    if type(amount_in) is not int or amount_in <= 0:
        raise NoRoute(f"amount in must be a positive number of base units, got {amount_in!r}")
    paths = candidate_paths(market, token_in, token_out)
    if not paths:
        raise NoRoute(f"no pool or two-hop path connects {token_in} to {token_out}")
    quotes, unfilled = _quote_all(market, paths, amount_in)
    viable = [quote for quote in quotes if quote.amount_out > 0]
    split = _best_split(market, viable, unfilled, amount_in, min_split_gain_bps)
    if split is not None:
        return RoutingDecision(token_in, token_out, amount_in, tuple(quotes), split.legs,
                               split.amount_out, split.reason(market, viable))
    if not viable:
        why = "no venue has the liquidity" if unfilled else "the amount is too small"
        raise NoRoute(f"cannot route {amount_in} base units of {token_in}: {why}")
    winner = viable[0]
    leg = RouteLeg(winner.venue, amount_in, winner.amount_out, winner.path)
    return RoutingDecision(token_in, token_out, amount_in, tuple(quotes), (leg,),
                           winner.amount_out, _single_reason(market, winner, viable))


def execute_legs(market: Market, legs: Iterable[RouteLeg]) -> tuple[int, Market]:
    """Run the legs against `market` as it is now: the total output and the market after.

    Raises NoRoute when a leg's pool has gone or can no longer fill its slice.
    """
    total = 0
    for leg in legs:
        amount = leg.amount_in
        for mint_in, mint_out in zip(leg.path, leg.path[1:]):
            pool = market.pool(leg.venue, mint_in, mint_out)
            if pool is None:
                raise NoRoute(f"{leg.venue} no longer has a {mint_in}/{mint_out} pool")
            try:
                swap = pool.quote(mint_in, amount)
            except InsufficientLiquidity as exc:
                raise NoRoute(str(exc)) from exc
            market = market.with_pool(swap.pool_after)
            amount = swap.amount_out
            if amount == 0:
                break
        total += amount
    return total, market


def min_amount_out(amount_out: int, slippage_bps: int) -> int:
    """The least output the swap may yield: `amount_out` less the tolerance, rounded down."""
    if not 0 <= slippage_bps <= 10_000:
        raise ValueError(f"slippage must be within 0..10000 bps, got {slippage_bps}")
    if amount_out < 0:
        raise ValueError("amount_out must not be negative")
    return amount_out * (10_000 - slippage_bps) // 10_000


# --- quoting -------------------------------------------------------------------------------


def _swaps(market: Market, path: Path, amount_in: int) -> list[PoolSwap]:
    """The swaps along `path`; stops early if a hop yields nothing to pass on."""
    swaps: list[PoolSwap] = []
    amount = amount_in
    for mint_in, mint_out in zip(path.mints, path.mints[1:]):
        pool = market.pool(path.venue, mint_in, mint_out)
        assert pool is not None, "candidate paths only use existing pools"
        swap = pool.quote(mint_in, amount)
        swaps.append(swap)
        amount = swap.amount_out
        if amount == 0:
            break
    return swaps


def _path_output(market: Market, path: Path, amount_in: int) -> int:
    if amount_in == 0:
        return 0
    swaps = _swaps(market, path, amount_in)
    return swaps[-1].amount_out


def _compound_impact(swaps: list[PoolSwap]) -> Decimal:
    """1 - prod(1 - impact_i), in bps floored to 0.01, using integer hundredths of bps."""
    kept, scale = 1, 1
    for swap in swaps:
        kept *= 1_000_000 - int(swap.price_impact_bps * 100)
        scale *= 1_000_000
    return Decimal((scale - kept) * 1_000_000 // scale).scaleb(-2)


def _quote_all(market: Market, paths: Iterable[Path],
               amount_in: int) -> tuple[list[VenueQuote], list[Path]]:
    """Quotes for every path that can fill the amount, best first; and the paths that cannot."""
    quotes, unfilled = [], []
    for path in paths:
        try:
            quotes.append(quote_path(market, path, amount_in))
        except InsufficientLiquidity:
            unfilled.append(path)
    quotes.sort(key=lambda q: (-q.amount_out, len(q.path), q.venue, q.path))
    return quotes, unfilled


# --- splitting -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Split:
    legs: tuple[RouteLeg, ...]
    amount_out: int

    def reason(self, market: Market, viable: list[VenueQuote]) -> str:
        first, second = self.legs
        total = first.amount_in + second.amount_in
        share = (200 * first.amount_in + total) // (2 * total)  # rounded percent
        token_out = market.token(first.path[-1])
        head = (f"split {share}/{100 - share} {first.venue}/{second.venue} pays "
                f"{_display(self.amount_out, token_out)} {token_out.symbol}")
        if not viable:
            return f"{head}; no single venue has the liquidity for the whole order"
        best = viable[0]
        return (f"{head}, {_percent_more(self.amount_out, best.amount_out)} more than "
                f"{_label(market, best)} alone ({_display(best.amount_out, token_out)})")


def _best_split(market: Market, viable: list[VenueQuote], unfilled: list[Path],
                amount_in: int, min_gain_bps: int) -> _Split | None:
    """Two legs on two venues, if together they beat the best single path by `min_gain_bps`."""
    pair = _split_pair(viable, unfilled)
    if pair is None or amount_in < 2:
        return None
    first, second = pair
    lo, hi = _feasible_shares(market, first, second, amount_in, unfilled)
    if lo > hi:
        return None

    def total(share: int) -> int:  # `share` is what goes along `second`
        return _path_output(market, first, amount_in - share) + _path_output(market, second, share)

    best_single = viable[0].amount_out if viable else 0
    # With a viable quote, `first` is the best path of all (the venues are taken best first).
    if viable and not _split_can_pay(total, lo, hi, amount_in, best_single):
        return None
    share, amount_out = _golden_max(total, lo, hi, max(1, amount_in // _SEARCH_RESOLUTION))
    if amount_out * 10_000 <= best_single * (10_000 + min_gain_bps):
        return None
    legs = sorted(
        (RouteLeg(first.venue, amount_in - share, _path_output(market, first, amount_in - share),
                  first.mints),
         RouteLeg(second.venue, share, _path_output(market, second, share), second.mints)),
        key=lambda leg: (-leg.amount_in, leg.venue),
    )
    return _Split(tuple(legs), amount_out)


def _split_pair(viable: list[VenueQuote], unfilled: list[Path]) -> tuple[Path, Path] | None:
    """The best path of each of the two best venues (a venue that cannot fill ranks last)."""
    chosen: dict[str, Path] = {}
    for quote in viable:
        chosen.setdefault(quote.venue, Path(quote.venue, quote.path))
    for path in unfilled:  # direct paths come first among these
        chosen.setdefault(path.venue, path)
    if len(chosen) < 2:
        return None
    first, second, *_ = chosen.values()
    return first, second


def _feasible_shares(market: Market, first: Path, second: Path, amount_in: int,
                     unfilled: list[Path]) -> tuple[int, int]:
    """Bounds on the share sent along `second`, so that both legs can fill (and are non-empty)."""
    lo, hi = 1, amount_in - 1
    if first in unfilled:
        lo = max(lo, amount_in - _capacity(market, first, amount_in))
    if second in unfilled:
        hi = min(hi, _capacity(market, second, amount_in))
    return lo, hi


def _capacity(market: Market, path: Path, amount_in: int) -> int:
    """About the largest amount below `amount_in` that `path` can fill (binary search)."""
    fits, fails = 0, amount_in
    tolerance = max(1, amount_in // _SEARCH_RESOLUTION)
    while fails - fits > tolerance:
        middle = (fits + fails) // 2
        try:
            _swaps(market, path, middle)
            fits = middle
        except InsufficientLiquidity:
            fails = middle
    return fits


def _split_can_pay(total: Callable[[int], int], lo: int, hi: int, amount_in: int,
                   best_out: int) -> bool:
    """A cheap marginal test before searching: does moving 1% off the best path help?

    `total(share)` is concave in the share sent along the second path, and share 0 is the
    best single path; if the first step away from it loses, every further step loses too.
    Small orders stop here, after one evaluation. The probe stays where both legs can fill.
    """
    return total(min(max(lo, amount_in * _PROBE_PERCENT // 100), hi)) > best_out


def _golden_max(f: Callable[[int], int], lo: int, hi: int, tolerance: int) -> tuple[int, int]:
    """The integer in [lo, hi] maximising a concave `f`, to within `tolerance`; and f there.

    Golden-section search: one evaluation per step, the interval shrinking by 0.618.
    """
    if hi - lo < 2:
        return max(((x, f(x)) for x in range(lo, hi + 1)), key=lambda pair: pair[1])
    a, b = lo, hi
    c, d = b - (b - a) * _GOLDEN // 1_000_000, a + (b - a) * _GOLDEN // 1_000_000
    fc, fd = f(c), f(d)
    best = max((c, fc), (d, fd), key=lambda pair: pair[1])
    while b - a > tolerance and c < d:
        if fc < fd:  # the maximum lies right of c
            a, c, fc = c, d, fd
            d = a + (b - a) * _GOLDEN // 1_000_000
            if d <= c:
                break
            fd = f(d)
            best = max(best, (d, fd), key=lambda pair: pair[1])
        else:  # the maximum lies left of d
            b, d, fd = d, c, fc
            c = b - (b - a) * _GOLDEN // 1_000_000
            if c >= d:
                break
            fc = f(c)
            best = max(best, (c, fc), key=lambda pair: pair[1])
    return best


# --- explaining ----------------------------------------------------------------------------


def _single_reason(market: Market, winner: VenueQuote, viable: list[VenueQuote]) -> str:
    token_out = market.token(winner.path[-1])
    amount = _display(winner.amount_out, token_out)
    pays = f"{_label(market, winner)} pays {amount} {token_out.symbol}"
    others = [q for q in viable[1:] if q.venue != winner.venue] or viable[1:]
    if not others:
        sentence = f"{pays}, the only route"
    else:
        runner = others[0]
        margin = _percent_more(winner.amount_out, runner.amount_out)
        sentence = (f"{pays} vs {_label(market, runner)} "
                    f"{_display(runner.amount_out, token_out)} (+{margin})")
    if len(winner.path) > 2 and not market.pools_between(winner.path[0], winner.path[-1]):
        token_in = market.token(winner.path[0])
        sentence += f"; no direct {token_in.symbol}/{token_out.symbol} pool exists"
    return sentence


def _label(market: Market, quote: VenueQuote) -> str:
    via = "/".join(market.token(mint).symbol for mint in quote.path[1:-1])
    return f"{quote.venue} via {via}" if via else quote.venue


def _percent_more(better: int, worse: int) -> str:
    if worse <= 0:
        return "100%+"
    hundredths = (better - worse) * 10_000 // worse
    return f"{hundredths // 100}.{hundredths % 100:02d}%"


def _display(base_units: int, token: Token) -> str:
    """Readable, truncated amount: 6 significant digits, at least 2 decimals, grouped thousands."""
    whole, fraction = divmod(base_units, 10**token.decimals)
    digits = str(fraction).rjust(token.decimals, "0")
    if whole > 0:
        shown = digits[: max(2, 6 - len(str(whole)))]
        return f"{whole:,}.{shown}" if shown else f"{whole:,}"
    if fraction == 0:
        return "0"
    leading = len(digits) - len(digits.lstrip("0"))
    return "0." + digits[: leading + 6].rstrip("0")
