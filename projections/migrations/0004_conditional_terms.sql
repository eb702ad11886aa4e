-- The conditional-order terms of an order (limit and sniper; see domain/orders/state.py,
-- OrderTerms) and what the waiting order saw of the market, so GET /api/orders/{id} can show
-- them. All null for a market order. Prices are tokenOut per 1 tokenIn in human units
-- (numeric, exact); the columns are appended to `orders` in projections/rows.py ORDER_COLUMNS
-- order. No schema name here: the migration runner sets search_path to the target schema.
alter table orders
    add column if not exists limit_price       numeric,
    add column if not exists time_in_force     text,
    add column if not exists expires_at        timestamptz,
    add column if not exists trigger           text,
    add column if not exists min_liquidity_usd numeric,
    add column if not exists max_price         numeric,
    add column if not exists best_price        numeric,     -- the latest PriceObserved
    add column if not exists best_price_at     timestamptz,
    add column if not exists triggered_price   numeric;     -- OrderTriggered.observed_price
