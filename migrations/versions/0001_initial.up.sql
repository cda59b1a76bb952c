-- Roles are cluster-wide: create them once, grant per database below.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'brain_app') THEN
        CREATE ROLE brain_app LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'brain_watchdog') THEN
        CREATE ROLE brain_watchdog LOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'brain_operator') THEN
        CREATE ROLE brain_operator LOGIN;
    END IF;
END
$$;

-- ---------------------------------------------------------------- the durable bus
-- Every message ever sent stays here. Publishing is a single-row insert: fan-out to
-- consumers happens on the consumer side (bus_claim below), off the producer's commit path.
CREATE TABLE agent_messages (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The inserting transaction: consumers take in messages by commit visibility, not by
    -- id, because ids are handed out before commit and commits land out of id order.
    tx              xid8 NOT NULL DEFAULT pg_current_xact_id(),
    topic           text NOT NULL,
    from_agent      text NOT NULL,
    to_agent        text,
    correlation_id  text,
    causation_id    bigint,
    payload         jsonb NOT NULL,
    signer          text,
    signature       text
);
CREATE INDEX agent_messages_tx ON agent_messages (tx);
-- Append-only in time order: a BRIN index serves time-window replays at almost no insert cost.
CREATE INDEX agent_messages_created_at ON agent_messages USING brin (created_at);
CREATE INDEX agent_messages_correlation ON agent_messages (correlation_id);

-- Which consumer receives which topic.
CREATE TABLE bus_subscriptions (
    topic       text NOT NULL,
    consumer    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, consumer)
);
CREATE INDEX bus_subscriptions_consumer ON bus_subscriptions (consumer);

-- Each consumer's cursor: the snapshot of its last take-in. A message belongs to the next
-- take-in when its transaction was not yet visible in that snapshot (the same watermark
-- PgQ uses), so a late commit is never skipped and nothing is taken twice.
CREATE TABLE bus_consumers (
    consumer     text PRIMARY KEY,
    seen         pg_snapshot NOT NULL DEFAULT pg_current_snapshot(),
    taken_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- One row per (message, consumer) once the consumer has taken the message in.
CREATE TABLE agent_deliveries (
    message_id    bigint NOT NULL,
    consumer      text NOT NULL,
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'working', 'done', 'dead')),
    attempts      integer NOT NULL DEFAULT 0,
    available_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    lease_owner   uuid,
    lease_until   timestamptz,
    last_error    text,
    done_at       timestamptz,
    PRIMARY KEY (message_id, consumer)
);
-- The claim reads only these slices; partial indexes keep them small as history grows.
CREATE INDEX agent_deliveries_pending ON agent_deliveries (consumer, message_id) WHERE state = 'pending';
CREATE INDEX agent_deliveries_working ON agent_deliveries (consumer, lease_until) WHERE state = 'working';
CREATE INDEX agent_deliveries_dead ON agent_deliveries (consumer) WHERE state = 'dead';

-- Take in what committed since the consumer's last look, then claim a batch under a lease.
-- A function so both steps run in one round trip, each statement seeing the one before.
CREATE FUNCTION bus_claim(p_consumer text, p_limit integer, p_owner uuid, p_lease_s double precision)
RETURNS TABLE (message_id bigint, attempts integer, topic text, from_agent text, to_agent text,
               correlation_id text, causation_id bigint, payload text, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    now_snap pg_snapshot := pg_current_snapshot();
    prev     pg_snapshot;
    taken    integer;
BEGIN
    -- One take-in at a time per consumer; a worker that finds it busy just claims.
    SELECT c.seen INTO prev FROM bus_consumers c WHERE c.consumer = p_consumer FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        -- A two-sided range on tx: even a cached generic plan then estimates a narrow slice
        -- and walks the tx index, instead of scanning the whole message history.
        INSERT INTO agent_deliveries (message_id, consumer)
        SELECT m.id, p_consumer
          FROM agent_messages m
         WHERE m.tx >= pg_snapshot_xmin(prev) AND m.tx < pg_snapshot_xmax(now_snap)
           AND NOT pg_visible_in_snapshot(m.tx, prev)
           AND pg_visible_in_snapshot(m.tx, now_snap)
           AND m.topic IN (SELECT s.topic FROM bus_subscriptions s WHERE s.consumer = p_consumer)
           AND (m.to_agent IS NULL OR m.to_agent = p_consumer)
         ORDER BY m.id
        ON CONFLICT DO NOTHING;
        UPDATE bus_consumers SET seen = now_snap, taken_at = clock_timestamp()
         WHERE consumer = p_consumer;
    END IF;

    -- Two claims, each a plain ordered index scan that stops at the limit (an OR of both
    -- would become a bitmap scan that revisits every not-yet-vacuumed finished delivery):
    -- first work whose lease ran out (its worker died), then due pending work.
    RETURN QUERY
    WITH ready AS (
        SELECT d.message_id FROM agent_deliveries d
         WHERE d.consumer = p_consumer AND d.state = 'working' AND d.lease_until < clock_timestamp()
         ORDER BY d.lease_until
         LIMIT p_limit
         FOR UPDATE SKIP LOCKED
    ), claimed AS (
        UPDATE agent_deliveries d
           SET attempts = d.attempts + 1, lease_owner = p_owner,
               lease_until = clock_timestamp() + make_interval(secs => p_lease_s)
          FROM ready
         WHERE d.consumer = p_consumer AND d.message_id = ready.message_id
        RETURNING d.message_id, d.attempts
    )
    SELECT c.message_id, c.attempts, m.topic, m.from_agent, m.to_agent, m.correlation_id,
           m.causation_id, m.payload::text, m.created_at
      FROM claimed c JOIN agent_messages m ON m.id = c.message_id;
    GET DIAGNOSTICS taken = ROW_COUNT;

    IF taken < p_limit THEN
        RETURN QUERY
        WITH ready AS (
            -- SKIP LOCKED lets competing workers of the same consumer take disjoint rows
            SELECT d.message_id FROM agent_deliveries d
             WHERE d.consumer = p_consumer AND d.state = 'pending' AND d.available_at <= clock_timestamp()
             ORDER BY d.message_id
             LIMIT p_limit - taken
             FOR UPDATE SKIP LOCKED
        ), claimed AS (
            -- the lease names this worker, so only it can ack or retry the delivery
            UPDATE agent_deliveries d
               SET state = 'working', attempts = d.attempts + 1, lease_owner = p_owner,
                   lease_until = clock_timestamp() + make_interval(secs => p_lease_s)
              FROM ready
             WHERE d.consumer = p_consumer AND d.message_id = ready.message_id
            RETURNING d.message_id, d.attempts
        )
        SELECT c.message_id, c.attempts, m.topic, m.from_agent, m.to_agent, m.correlation_id,
               m.causation_id, m.payload::text, m.created_at
          FROM claimed c JOIN agent_messages m ON m.id = c.message_id
         ORDER BY c.message_id;
    END IF;
END
$$;

-- What each consumer still owes: pending, in flight, dead, and published but not yet taken
-- in (a dead brain takes nothing in, and the watchdog must still see the queue grow).
CREATE VIEW bus_backlog AS
SELECT c.consumer,
       coalesce(d.pending, 0) AS pending,
       coalesce(d.working, 0) AS working,
       coalesce(d.dead, 0) AS dead,
       coalesce(u.untaken, 0) AS untaken,
       extract(epoch FROM clock_timestamp() - least(d.oldest_pending, u.oldest_untaken)) AS oldest_waiting_s
  FROM bus_consumers c
  LEFT JOIN LATERAL (
        SELECT count(*) FILTER (WHERE x.state = 'pending') AS pending,
               count(*) FILTER (WHERE x.state = 'working') AS working,
               count(*) FILTER (WHERE x.state = 'dead') AS dead,
               min(m.created_at) FILTER (WHERE x.state IN ('pending', 'working')) AS oldest_pending
          FROM agent_deliveries x JOIN agent_messages m ON m.id = x.message_id
         WHERE x.consumer = c.consumer AND x.state <> 'done') d ON true
  LEFT JOIN LATERAL (
        SELECT count(*) AS untaken, min(m.created_at) AS oldest_untaken
          FROM agent_messages m
         WHERE m.tx >= pg_snapshot_xmin(c.seen) AND NOT pg_visible_in_snapshot(m.tx, c.seen)
           AND m.topic IN (SELECT s.topic FROM bus_subscriptions s WHERE s.consumer = c.consumer)
           AND (m.to_agent IS NULL OR m.to_agent = c.consumer)) u ON true;

-- ---------------------------------------------------------------- journal, ledger, state
CREATE TABLE agent_journal (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT now(),
    kind            text NOT NULL,              -- cycle, halt, resume, optimizer, ...
    correlation_id  text,
    symbol          text,
    outcome         text NOT NULL,              -- filled, veto, skip, expired, halted, error, ...
    title           text NOT NULL,
    body_md         text NOT NULL,
    facts           jsonb NOT NULL DEFAULT '{}'::jsonb,
    file_path       text
);
CREATE INDEX agent_journal_created_at ON agent_journal (created_at);
CREATE INDEX agent_journal_correlation ON agent_journal (correlation_id);

CREATE TABLE llm_cost_ledger (
    id                  bigserial PRIMARY KEY,
    created_at          timestamptz NOT NULL DEFAULT now(),
    agent               text NOT NULL,
    skill               text NOT NULL,
    skill_hash          text NOT NULL,
    correlation_id      text,
    route               text NOT NULL,
    model               text NOT NULL,
    input_tokens        integer NOT NULL DEFAULT 0,
    output_tokens       integer NOT NULL DEFAULT 0,
    cache_read_tokens   integer NOT NULL DEFAULT 0,
    cache_write_tokens  integer NOT NULL DEFAULT 0,
    cost_usd            numeric(18, 10) NOT NULL DEFAULT 0,   -- cheap models cost micro-dollars a call
    latency_ms          double precision NOT NULL DEFAULT 0,
    outcome             text NOT NULL,           -- ok, failed, invalid, ...
    error_class         text,
    error_detail        text
);
CREATE INDEX llm_cost_ledger_created_at ON llm_cost_ledger (created_at);

-- Heartbeats, stance, breaker states: small keyed facts with a timestamp.
CREATE TABLE app_state (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- ---------------------------------------------------------------- halts
CREATE TABLE halts (
    id             bigserial PRIMARY KEY,
    raised_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    level          smallint NOT NULL CHECK (level BETWEEN 1 AND 4),
    invariant      text NOT NULL,
    reason         text NOT NULL,
    evidence       jsonb NOT NULL DEFAULT '{}'::jsonb,
    raised_by      text NOT NULL,
    resumed_at     timestamptz,
    resumed_by     text,
    resume_reason  text,
    forced         boolean NOT NULL DEFAULT false,
    CHECK ((resumed_at IS NULL) = (resumed_by IS NULL))
);
CREATE INDEX halts_active ON halts (level) WHERE resumed_at IS NULL;

CREATE TABLE operator_pages (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    halt_id     bigint REFERENCES halts (id),
    target      text NOT NULL,
    status      text NOT NULL,                  -- sent, failed
    attempts    integer NOT NULL DEFAULT 0,
    error       text
);

-- ---------------------------------------------------------------- market data, orders, positions
CREATE TABLE bars (
    symbol     text NOT NULL,
    ts         timestamptz NOT NULL,
    open       double precision NOT NULL,
    high       double precision NOT NULL,
    low        double precision NOT NULL,
    close      double precision NOT NULL,
    volume     double precision NOT NULL CHECK (volume >= 0),
    source     text NOT NULL DEFAULT 'replay',
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (symbol, ts),
    CHECK (high >= greatest(open, close) AND low <= least(open, close))
);

CREATE TABLE orders (
    id                bigserial PRIMARY KEY,
    client_order_id   text NOT NULL UNIQUE,
    parent_client_order_id text,
    correlation_id    text,
    proposal_id       bigint,
    symbol            text NOT NULL,
    side              text NOT NULL CHECK (side IN ('buy', 'sell')),
    intent            text NOT NULL CHECK (intent IN ('open', 'close')),
    order_type        text NOT NULL CHECK (order_type IN ('market', 'limit', 'stop', 'take_profit')),
    qty               double precision NOT NULL CHECK (qty > 0),
    limit_price       double precision,
    stop_price        double precision,
    status            text NOT NULL DEFAULT 'new'
                      CHECK (status IN ('new', 'working', 'filled', 'cancelled', 'rejected')),
    broker            text NOT NULL DEFAULT 'paper',
    broker_order_id   text,
    signal_time       timestamptz,           -- the bar the decision was made on
    filled_at         timestamptz,
    fill_price        double precision,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX orders_working ON orders (symbol) WHERE status IN ('new', 'working');

-- The last gate every order passes, whoever inserts it: no opening order under a halt at L2+.
CREATE FUNCTION refuse_opening_order_while_halted() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    blocking halts%ROWTYPE;
BEGIN
    SELECT * INTO blocking FROM halts
     WHERE resumed_at IS NULL AND level >= 2
     ORDER BY level DESC, id LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'trading halted (halt % at L%: %): opening order % refused',
            blocking.id, blocking.level, blocking.invariant, NEW.client_order_id
            USING ERRCODE = 'P0001', HINT = 'only brainctl resume lifts a halt';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER orders_refuse_while_halted
    BEFORE INSERT ON orders
    FOR EACH ROW WHEN (NEW.intent = 'open')
    EXECUTE FUNCTION refuse_opening_order_while_halted();

CREATE TABLE fills (
    id               bigserial PRIMARY KEY,
    order_id         bigint NOT NULL REFERENCES orders (id),
    client_order_id  text NOT NULL,
    broker_fill_id   text NOT NULL UNIQUE,
    symbol           text NOT NULL,
    side             text NOT NULL CHECK (side IN ('buy', 'sell')),
    qty              double precision NOT NULL CHECK (qty > 0),
    price            double precision NOT NULL CHECK (price > 0),
    commission       double precision NOT NULL DEFAULT 0,
    filled_at        timestamptz NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE positions (
    account          text NOT NULL DEFAULT 'paper',
    symbol           text NOT NULL,
    qty              double precision NOT NULL,     -- signed: long > 0, short < 0
    avg_price        double precision NOT NULL,
    stop_price       double precision,
    take_profit      double precision,
    opened_at        timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (account, symbol)
);

CREATE TABLE accounts (
    account          text PRIMARY KEY,
    cash             double precision NOT NULL,
    equity           double precision NOT NULL,
    high_water_mark  double precision NOT NULL,
    day_start_equity double precision NOT NULL,
    day              date NOT NULL,
    margin_used      double precision NOT NULL DEFAULT 0,
    locked           boolean NOT NULL DEFAULT false,   -- L4 locks the broker adapter
    updated_at       timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Equity after each bar the paper broker marks to market: the curve the dashboard draws and
-- the drawdown the summaries report.
CREATE TABLE equity_history (
    account   text NOT NULL,
    ts        timestamptz NOT NULL,
    equity    double precision NOT NULL,
    cash      double precision NOT NULL,
    PRIMARY KEY (account, ts)
);

-- ---------------------------------------------------------------- skills, ingress, optimizer
CREATE TABLE skill_versions (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    content_hash  text NOT NULL,
    text          text NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, content_hash)
);

CREATE TABLE skill_rejections (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    path         text NOT NULL,
    error        text NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE ingress_receipts (
    client_id    text NOT NULL,
    endpoint     text NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    response     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (endpoint, client_id)
);

CREATE TABLE context_notes (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    source      text NOT NULL,
    symbol      text,
    title       text NOT NULL,
    body        text NOT NULL
);

CREATE TABLE optimizer_reports (
    id               bigserial PRIMARY KEY,
    created_at       timestamptz NOT NULL DEFAULT now(),
    period_start     date NOT NULL,
    period_end       date NOT NULL,
    status           text NOT NULL,              -- complete, failed, baseline
    file_path        text,
    body_md          text NOT NULL,
    stats            jsonb NOT NULL DEFAULT '{}'::jsonb,
    recommendations  jsonb NOT NULL DEFAULT '[]'::jsonb
);

CREATE TABLE optimizer_applies (
    id            bigserial PRIMARY KEY,
    report_id     bigint NOT NULL REFERENCES optimizer_reports (id),
    rec_no        integer NOT NULL,
    skill         text NOT NULL,
    applied_by    text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    diff          text NOT NULL
);

-- ---------------------------------------------------------------- privileges
-- brain_app runs the agents: it may read halts but never write them, and it appends
-- to the message log and journal without rewriting history.
GRANT SELECT, INSERT ON agent_messages, agent_journal, llm_cost_ledger, fills,
    skill_versions, skill_rejections, context_notes, optimizer_reports TO brain_app;
GRANT SELECT, INSERT, UPDATE ON agent_deliveries, app_state, orders, ingress_receipts TO brain_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON bus_subscriptions, bus_consumers, positions, accounts TO brain_app;
GRANT SELECT, INSERT, UPDATE ON equity_history TO brain_app;
GRANT SELECT, INSERT ON bars TO brain_app;
GRANT SELECT ON halts, operator_pages, optimizer_applies TO brain_app;

-- brain_watchdog reads everything, raises halts, and at L4 flattens through the paper state.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO brain_watchdog;
GRANT INSERT ON halts, agent_journal, operator_pages, orders, fills, agent_messages TO brain_watchdog;
GRANT INSERT, UPDATE ON app_state TO brain_watchdog;
GRANT UPDATE ON orders, positions, accounts TO brain_watchdog;
GRANT INSERT, UPDATE ON equity_history TO brain_watchdog;
GRANT DELETE ON positions TO brain_watchdog;

-- brain_operator (brainctl) reads everything, raises manual halts and alone lifts them.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO brain_operator;
GRANT INSERT ON halts, agent_journal, optimizer_applies, agent_messages TO brain_operator;
GRANT UPDATE (resumed_at, resumed_by, resume_reason, forced) ON halts TO brain_operator;
GRANT INSERT, UPDATE ON app_state TO brain_operator;
GRANT UPDATE ON agent_deliveries TO brain_operator;
GRANT UPDATE (locked) ON accounts TO brain_operator;

GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO brain_app, brain_watchdog, brain_operator;
-- Views and functions run with the caller's rights; the grants above still decide.
GRANT SELECT ON bus_backlog TO brain_app, brain_watchdog, brain_operator;
