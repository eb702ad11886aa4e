-- The simulated Solana ledger used by the execution stage (not a projection: it stands in for
-- the chain, an external system). One row per transaction signature; the primary key is what
-- makes a re-driven submission idempotent.
CREATE TABLE IF NOT EXISTS sim_chain_transactions (
    signature              text PRIMARY KEY,
    order_id               text        NOT NULL,
    attempt                integer     NOT NULL,
    min_amount_out         numeric     NOT NULL,
    submitted_at           timestamptz NOT NULL,
    lands_at               timestamptz NOT NULL,
    status                 text        NOT NULL
        CHECK (status IN ('pending', 'confirmed', 'failed', 'dropped')),
    amount_out             numeric,
    slot                   bigint,
    error_code             text,
    settled_at             timestamptz,
    -- a second submit of the same signature is counted here instead of landing again
    duplicate_submissions  integer     NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS sim_chain_transactions_order ON sim_chain_transactions (order_id);
