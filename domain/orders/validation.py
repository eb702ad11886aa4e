"""Is an `ExecuteOrder` well-formed? The edge refuses bad requests by the same rule book
(`rules`); this catches an edge bug before it becomes history (an `InvalidCommand` naming
every broken rule, never an event)."""

from __future__ import annotations

from domain.orders.commands import ExecuteOrder
from domain.orders.errors import InvalidCommand
from domain.orders.rules import order_errors

_COMMON = (("token_in", "tokenIn"), ("token_out", "tokenOut"), ("amount_in", "amountIn"),
           ("slippage_bps", "slippageBps"), ("token_in_decimals", "tokenInDecimals"),
           ("token_out_decimals", "tokenOutDecimals"))
_CONDITIONAL = (("limit_price", "limitPrice"), ("time_in_force", "timeInForce"),
                ("expires_at", "expiresAt"), ("trigger", "trigger"),
                ("min_liquidity_usd", "minLiquidityUsd"), ("max_price", "maxPrice"))


def validate(command: ExecuteOrder) -> None:
    """Raise `InvalidCommand` naming every broken rule of `command`."""
    values: dict[str, object] = {name: getattr(command, attr) for attr, name in _COMMON}
    values.update((name, getattr(command, attr)) for attr, name in _CONDITIONAL
                  if getattr(command, attr) is not None)
    errors = order_errors(command.order_type, values)
    if errors:
        raise InvalidCommand("; ".join(f"{e.field}: {e.message}" for e in errors))
