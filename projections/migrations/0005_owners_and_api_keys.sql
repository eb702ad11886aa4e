-- Who owns an order, and the API keys that can own one (issue #11, auth).
--
-- `orders.owner` is the id of the API key that placed the order (OrderAccepted.owner, schema
-- v4); null for an order written before auth, which only an admin sees while auth is on.
-- Appended to ORDER_COLUMNS (readmodel/rows.py) in this order. The index serves the owner's
-- list and the idempotency lookup (owner, client_order_id).
--
-- `api_keys` holds a key's id, name, scope and HMAC-SHA256 of the secret part under the
-- server secret (AUTH_SECRET): never the key itself. `revoked_at` set = refused everywhere
-- within the API's key-cache TTL. No schema name here: the runner sets search_path.
alter table orders
    add column if not exists owner text;
create index if not exists orders_owner_created on orders (owner, created_at desc);

create table if not exists api_keys (
    key_id      text primary key,
    name        text not null,
    scope       text not null check (scope in ('read', 'trade', 'admin')),
    secret_hash bytea not null,
    created_at  timestamptz not null default now(),
    revoked_at  timestamptz
);
