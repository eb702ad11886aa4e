-- The read model folded from orders.events by the projector (docs/DESIGN.md, "Read model").
-- Every row here is derived: `oee projections rebuild` recreates it from the topic.
-- No schema name here: the migration runner sets search_path to the target schema.

-- One row per order: its current state. `seq` is the last event applied; the projector only
-- ever replaces a row with one of a higher seq, so a replayed or duplicated event changes
-- nothing. Amounts are integers in base units (numeric: they exceed bigint's range).
create table orders (
    order_id            text        primary key,
    seq                 int         not null check (seq > 0),
    status              text        not null,
    order_type          text        not null,
    token_in            text        not null,
    token_out           text        not null,
    token_in_symbol     text        not null,
    token_out_symbol    text        not null,
    token_in_decimals   int         not null,
    token_out_decimals  int         not null,
    amount_in           numeric     not null,
    slippage_bps        int         not null,
    client_order_id     text,
    venue               text,
    expected_amount_out numeric,
    min_amount_out      numeric,
    amount_out          numeric,
    executed_price      numeric,
    signature           text,
    attempts            int         not null,
    failure_code        text,
    failure_reason      text,
    routing             jsonb,
    created_at          timestamptz not null,
    updated_at          timestamptz not null,
    pending_at          timestamptz,
    routing_at          timestamptz,
    building_at         timestamptz,
    submitted_at        timestamptz,
    confirmed_at        timestamptz,
    failed_at           timestamptz,
    cancelled_at        timestamptz,
    expired_at          timestamptz,
    waiting_at          timestamptz
);

-- GET /api/orders lists newest first and pages by keyset (created_at, order_id): each filter
-- gets an index that serves "filter = x order by created_at desc, order_id desc limit n".
create index orders_created on orders (created_at desc, order_id desc);
create index orders_status_created on orders (status, created_at desc, order_id desc);
create index orders_type_created on orders (order_type, created_at desc, order_id desc);
create index orders_token_in_created on orders (token_in, created_at desc, order_id desc);
create index orders_token_out_created on orders (token_out, created_at desc, order_id desc);
create index orders_venue_created on orders (venue, created_at desc, order_id desc);

-- The audit log: every event applied, once, with the Kafka coordinates it was read from.
-- The unique (order_id, seq) is the audit trail's index (seq order) and the last guard
-- against applying one event twice.
create table order_events (
    event_id    text        primary key,
    order_id    text        not null,
    seq         int         not null check (seq > 0),
    type        text        not null,
    status      text        not null,
    payload     jsonb       not null,
    occurred_at timestamptz not null,
    topic       text        not null,
    partition   int         not null,
    "offset"    bigint      not null,
    unique (order_id, seq)
);

-- Records the projector could not apply (undecodable, or an event the order's state machine
-- refuses: a seq gap, an event after a terminal one). Kept, not skipped silently, and not a
-- crash loop: the offset moves on and the record waits here for a human (see /api/metrics).
create table projection_rejects (
    topic       text        not null,
    partition   int         not null,
    "offset"    bigint      not null,
    order_id    text,
    seq         int,
    error       text        not null,
    value       bytea,
    rejected_at timestamptz not null default now(),
    primary key (topic, partition, "offset")
);
