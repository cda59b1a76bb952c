-- The current schema, in one file: what migrations/versions/ leaves in a database after its
-- last revision (0009). The revisions stay what deployed databases run; this file is for
-- reading the schema without summing them, and for creating an empty database at once:
--   psql --single-transaction -v ON_ERROR_STOP=1 -f migrations/schema.sql
-- tests/integration/test_schema_file.py keeps it equal to upgrade-from-empty. A revision that
-- changes the schema changes this file in the same commit (see README.md here).
--
-- Function bodies (between $$) are exactly those the revisions install, comments included:
-- the body is stored as written, so a different comment there would be a different function.

-- ================================================================ roles
-- Roles are cluster-wide: create each only when missing (another database on the server may
-- have made it already), grant per database at the end of this file. Passwords are set apart
-- (`brain db upgrade --set-passwords` reads them from the environment), never written here.
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

-- ================================================================ the bus
-- Every message ever sent stays in agent_messages. Publishing is a single-row insert: fan-out
-- to consumers happens on the consumer side (bus_claim), off the producer's commit path. The
-- statements that use these tables are in brain/bus.sql.

-- ---------------------------------------------------------------- messages
CREATE TABLE agent_messages (
    id              bigserial PRIMARY KEY,
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The inserting transaction: consumers take in messages by commit visibility, not by
    -- id, because ids are handed out before commit and commits land out of id order.
    tx              xid8 NOT NULL DEFAULT pg_current_xact_id(),
    topic           text NOT NULL,
    from_agent      text NOT NULL,
    to_agent        text,                       -- NULL: every subscriber of the topic
    correlation_id  text,
    causation_id    bigint,
    payload         jsonb NOT NULL,
    signer          text,
    signature       text
);
-- The take-in walks this index over a narrow tx range (see bus_claim).
CREATE INDEX agent_messages_tx ON agent_messages (tx);
-- Append-only in time order: a BRIN index serves time-window replays at almost no insert cost.
CREATE INDEX agent_messages_created_at ON agent_messages USING brin (created_at);
CREATE INDEX agent_messages_correlation ON agent_messages (correlation_id);
-- Every signature the executor handles looks up its proposal's other signatures, and every few
-- seconds it looks for proposals that never collected three; without these each is a scan of
-- the whole message log. Partial: only signature and proposal rows pay on insert.
CREATE INDEX agent_messages_signatures ON agent_messages (causation_id) WHERE topic = 'trade.signature';
CREATE INDEX agent_messages_proposals ON agent_messages (created_at) WHERE topic = 'trade.proposal';

-- ---------------------------------------------------------------- subscriptions
-- Which consumer receives which topic. A consumer's list is whatever it declares at start.
CREATE TABLE bus_subscriptions (
    topic       text NOT NULL,
    consumer    text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, consumer)
);
CREATE INDEX bus_subscriptions_consumer ON bus_subscriptions (consumer);

-- ---------------------------------------------------------------- consumers
-- Each consumer's cursor: the snapshot of its last take-in. A message belongs to the next
-- take-in when its transaction was not yet visible in that snapshot (the same watermark PgQ
-- uses), so a late commit is never skipped and nothing is taken twice. A new consumer starts
-- from the moment it registers; a known one keeps its cursor, so what was published while it
-- was down is taken in on its first claim.
CREATE TABLE bus_consumers (
    consumer     text PRIMARY KEY,
    seen         pg_snapshot NOT NULL DEFAULT pg_current_snapshot(),
    taken_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- ---------------------------------------------------------------- deliveries
-- One row per (message, consumer) once the consumer has taken the message in: pending (waiting,
-- or backing off until available_at), working (leased to lease_owner until lease_until), done,
-- or dead (dead-lettered). A lease names its worker: ack, retry, renew and release only touch
-- rows whose lease_owner is theirs.
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
-- Each reader looks at one slice only (the claim at pending work, the slow reclaim of expired
-- leases at working, the backlog at dead); partial indexes keep them small as history grows.
CREATE INDEX agent_deliveries_pending ON agent_deliveries (consumer, message_id) WHERE state = 'pending';
CREATE INDEX agent_deliveries_working ON agent_deliveries (consumer, lease_until) WHERE state = 'working';
CREATE INDEX agent_deliveries_dead ON agent_deliveries (consumer) WHERE state = 'dead';

-- ---------------------------------------------------------------- bus_claim
-- bus_claim(consumer, limit, owner, lease_s): up to `limit` deliveries of `consumer`, each leased
-- to the worker `owner` for `lease_s` seconds, with their messages. One function so that its
-- steps run in one round trip, each statement seeing the one before; the brain calls it as a
-- statement of its own, so it commits on return and the cursor lock below is held only that long.
--
-- 1. Claim what already waits: pending deliveries whose available_at has come (a retry whose
--    backoff is over, work whose lease ran out and was put back, messages an earlier take-in
--    left over beyond its batch), lowest message id first, up to `limit`. FOR UPDATE SKIP
--    LOCKED lets competing workers of the same consumer take disjoint rows without waiting on
--    one another. Each becomes working, attempts + 1, leased to `owner`.
--
-- 2. Take in what committed since the consumer's last look. The consumer's cursor row is locked
--    FOR UPDATE SKIP LOCKED: one take-in at a time per consumer, and a worker that finds it
--    busy returns what it claimed in step 1 rather than waiting (a consumer that never
--    registered has no cursor and takes nothing in).
--
--    The snapshot that becomes the new cursor (now_snap) is taken only now, holding the lock.
--    Taken before it, it could be older than the cursor the worker that held the lock had just
--    written; writing it back would move the cursor back, so what was taken in since would
--    count as untaken again, and its deliveries (already there, skipped by ON CONFLICT) would
--    use up this claim's batch when met again. Taken under the lock, the cursor only moves
--    forward (revision 0007).
--
--    A message is new when its transaction is not visible in the cursor (prev) and is visible
--    in now_snap. Visibility, not ids: ids and transaction ids are handed out before commit
--    and commits land out of order, so "id above the last one seen" would skip a transaction
--    that was still in flight at the last look and committed later. Such a transaction is
--    in flight in prev, so not visible there, and visible in the first snapshot taken after
--    its commit: a late commit is taken in once, by the next take-in, however late it is.
--    What committed after now_snap, even if the insert's own statement already sees it, is
--    left to the next take-in. The two-sided range on tx (at or above prev's xmin, below
--    now_snap's xmax) selects nothing the visibility tests do not, but with it even a cached
--    generic plan estimates a narrow slice and walks agent_messages_tx instead of scanning the
--    whole message history. Only the consumer's topics, and messages addressed to it or to
--    no one in particular.
--
--    Each new message gets its delivery in one insert: the first of them by id, up to what is
--    left of the batch after step 1, are inserted already working, attempt 1, leased to
--    `owner`, and returned; the rest are inserted pending for the next claims. (Taking in as
--    pending and then claiming wrote each delivery three times; leasing in the insert saves a
--    row version and two index entries per message, revision 0006.) ON CONFLICT DO NOTHING
--    guards the primary key; only rows actually inserted are returned. Then the cursor becomes
--    now_snap.
--
-- What it does not do: look for working deliveries whose lease ran out (their worker died or
-- hung). That scan walks every finished delivery's stale index entry until vacuum, on every
-- claim; workers run reclaim_expired (brain/bus.sql) on their slow poll instead, which puts
-- such work back to pending (step 1 then takes it first) or dead-letters it once its attempts
-- are used up (revision 0005).
--
-- Rows come back step 1's first, then step 2's, each in message id order. The comments inside
-- the body are the deployed ones and point at older revisions; this is the whole account.
CREATE FUNCTION bus_claim(p_consumer text, p_limit integer, p_owner uuid, p_lease_s double precision)
RETURNS TABLE (message_id bigint, attempts integer, topic text, from_agent text, to_agent text,
               correlation_id text, causation_id bigint, payload text, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    now_snap pg_snapshot;
    prev     pg_snapshot;
    taken    integer;
BEGIN
    -- First what already waits (retries come due, leases reclaimed, what an earlier take-in
    -- left over), oldest first.
    RETURN QUERY
    WITH ready AS (
        -- SKIP LOCKED lets competing workers of the same consumer take disjoint rows
        SELECT d.message_id FROM agent_deliveries d
         WHERE d.consumer = p_consumer AND d.state = 'pending' AND d.available_at <= clock_timestamp()
         ORDER BY d.message_id
         LIMIT p_limit
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
    GET DIAGNOSTICS taken = ROW_COUNT;

    -- Then take in what committed since the last look (one take-in at a time per consumer;
    -- a worker that finds it busy has claimed above). See the initial revision for the tx
    -- range. The first of them, up to the batch, are this worker's at once.
    SELECT c.seen INTO prev FROM bus_consumers c WHERE c.consumer = p_consumer FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        -- Taken now, holding the cursor: a snapshot taken before the lock could be older than
        -- the cursor a worker that held it just wrote, and writing it back would move the
        -- cursor back (what was taken in since would count as untaken, and its deliveries
        -- would use up this claim's batch when met again).
        now_snap := pg_current_snapshot();
        RETURN QUERY
        WITH fresh AS (
            SELECT m.id, m.topic, m.from_agent, m.to_agent, m.correlation_id, m.causation_id,
                   m.payload, m.created_at, row_number() OVER (ORDER BY m.id) <= p_limit - taken AS mine
              FROM agent_messages m
             WHERE m.tx >= pg_snapshot_xmin(prev) AND m.tx < pg_snapshot_xmax(now_snap)
               AND NOT pg_visible_in_snapshot(m.tx, prev)
               AND pg_visible_in_snapshot(m.tx, now_snap)
               AND m.topic IN (SELECT s.topic FROM bus_subscriptions s WHERE s.consumer = p_consumer)
               AND (m.to_agent IS NULL OR m.to_agent = p_consumer)
        ), taken_in AS (
            INSERT INTO agent_deliveries (message_id, consumer, state, attempts, lease_owner, lease_until)
            SELECT f.id, p_consumer,
                   CASE WHEN f.mine THEN 'working' ELSE 'pending' END,
                   CASE WHEN f.mine THEN 1 ELSE 0 END,
                   CASE WHEN f.mine THEN p_owner END,
                   CASE WHEN f.mine THEN clock_timestamp() + make_interval(secs => p_lease_s) END
              FROM fresh f
             ORDER BY f.id
            ON CONFLICT DO NOTHING
            RETURNING agent_deliveries.message_id, agent_deliveries.state
        )
        SELECT f.id, 1, f.topic, f.from_agent, f.to_agent, f.correlation_id, f.causation_id,
               f.payload::text, f.created_at
          FROM fresh f JOIN taken_in t ON t.message_id = f.id
         WHERE t.state = 'working'
         ORDER BY f.id;
        UPDATE bus_consumers SET seen = now_snap, taken_at = clock_timestamp()
         WHERE consumer = p_consumer;
    END IF;
END
$$;

-- ---------------------------------------------------------------- backlog view
-- What each consumer still owes: pending, in flight, dead, and published but not yet taken in
-- (a dead brain takes nothing in, and the watchdog must still see the queue grow).
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

-- ================================================================ the journal
-- What the agents and the watchdog decided and why, one entry per cycle, halt, resume,
-- optimizer run, ...; each is also written as a markdown file (file_path).
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

-- ================================================================ the cost ledger
-- One row per model call, priced, whether it succeeded or not.
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
-- The recorder and the backtest read a cycle's model calls by correlation id; without an
-- index each read scans the whole ledger.
CREATE INDEX llm_cost_ledger_correlation ON llm_cost_ledger (correlation_id);

-- ================================================================ app state and heartbeats
-- Heartbeats, stance, breaker states, the watchdog's lease: small keyed facts with a timestamp.
CREATE TABLE app_state (
    key         text PRIMARY KEY,
    value       jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- brain_app writes every key but the watchdog's own. The executor and ingress read the
-- watchdog's heartbeat (`heartbeat:watchdog`) before anything reaches a broker, so the brain
-- must not be able to keep it fresh; and one watchdog acts at a time, the one holding
-- `watchdog:lease` (watchdog_proc/lease.py), so the brain must not take that lease and stand
-- every watchdog by: nothing under `watchdog:` is the brain's. Everyone reads every key. The
-- table grants (privileges, below) still decide who may write at all.
ALTER TABLE app_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY app_state_read ON app_state FOR SELECT USING (true);
CREATE POLICY app_state_brain_inserts ON app_state FOR INSERT TO brain_app
    WITH CHECK (key <> 'heartbeat:watchdog' AND key NOT LIKE 'watchdog:%');
CREATE POLICY app_state_brain_updates ON app_state FOR UPDATE TO brain_app
    USING (key <> 'heartbeat:watchdog' AND key NOT LIKE 'watchdog:%')
    WITH CHECK (key <> 'heartbeat:watchdog' AND key NOT LIKE 'watchdog:%');
CREATE POLICY app_state_watchdog_and_operator ON app_state FOR ALL TO brain_watchdog, brain_operator
    USING (true) WITH CHECK (true);

-- ================================================================ market data
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

-- ================================================================ orders, fills, positions, accounts
-- A unique client_order_id makes placement idempotent: an order placed twice is recorded once.
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

-- IB reports a fill's commission a moment after the fill itself; brain_app may update that
-- column (privileges, below).
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

-- ================================================================ halts and the halt gate
-- Raised by the watchdog, or by hand through brainctl; only brain_operator lifts one.
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

-- The last gate every order passes, whoever writes it: no opening order goes live under a halt
-- at L2 or above. It holds against everything brain_app can write, not only against halts:
-- - it reads public.halts with a fixed search_path (pg_temp last), so a temporary table named
--   halts in the brain's session cannot stand in for the real one;
-- - it runs when an order is inserted, when an order's intent is changed (a close turned into
--   an open), and when an opening order that was done (cancelled, filled, rejected) is made
--   live again;
-- - and brain_app may update only the order and account columns its brokers write (privileges,
--   below): not an order's terms, not the account's L4 lock.
CREATE FUNCTION refuse_opening_order_while_halted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    blocking public.halts%ROWTYPE;
BEGIN
    SELECT * INTO blocking FROM public.halts
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
    BEFORE INSERT OR UPDATE OF intent ON orders
    FOR EACH ROW WHEN (NEW.intent = 'open')
    EXECUTE FUNCTION refuse_opening_order_while_halted();
CREATE TRIGGER orders_refuse_revival_while_halted
    BEFORE UPDATE OF status ON orders
    FOR EACH ROW WHEN (NEW.intent = 'open' AND NEW.status IN ('new', 'working')
                       AND OLD.status NOT IN ('new', 'working'))
    EXECUTE FUNCTION refuse_opening_order_while_halted();

-- ================================================================ skills
-- Every skill text ever loaded, by content hash: the ledger's skill_hash names the text a call ran.
CREATE TABLE skill_versions (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL,
    content_hash  text NOT NULL,
    text          text NOT NULL,
    loaded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (name, content_hash)
);

-- An edit of a skill file that did not parse; the last good version stays in use.
CREATE TABLE skill_rejections (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    path         text NOT NULL,
    error        text NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now()
);

-- ================================================================ ingress and context
-- A request is answered once per (endpoint, client id): a retry gets the stored response.
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

-- ================================================================ optimizer and shadow experiments
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

-- A recommendation an operator applied (brainctl optimize apply), with the diff it made.
CREATE TABLE optimizer_applies (
    id            bigserial PRIMARY KEY,
    report_id     bigint NOT NULL REFERENCES optimizer_reports (id),
    rec_no        integer NOT NULL,
    skill         text NOT NULL,
    applied_by    text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT now(),
    diff          text NOT NULL
);

-- A variant of one recommendation, replayed through the same agents over the same history as
-- the live configuration, judged on a held-out period. The next optimizer report shows it
-- (reported_in). Written over the admin connection that runs the experiment.
CREATE TABLE shadow_experiments (
    id            bigserial PRIMARY KEY,
    report_id     bigint NOT NULL REFERENCES optimizer_reports (id),
    rec_no        integer NOT NULL,
    target        text NOT NULL,
    variant       jsonb NOT NULL,                 -- {"setting": ..., "value": ...} or {"skill": ..., "edit": ...}
    window_spec   jsonb NOT NULL,                 -- symbols, start, split, end
    status        text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    requested_by  text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    result        jsonb,
    error         text,
    file_path     text,
    reported_in   bigint REFERENCES optimizer_reports (id)
);
CREATE INDEX shadow_unreported ON shadow_experiments (id) WHERE reported_in IS NULL;

-- ================================================================ privileges
-- The trust boundary, role by role. Everything above is owned by the admin role that creates
-- it; views and functions run with the caller's rights, so these grants decide there too.
-- Functions keep PostgreSQL's default EXECUTE for everyone.

-- brain_app runs the agents: it may read halts but never write them, it appends to the message
-- log and journal without rewriting history, and of orders and accounts it updates only the
-- columns its brokers write (an order's state and fill, an account's balances).
GRANT SELECT, INSERT ON agent_messages, agent_journal, llm_cost_ledger, fills,
    skill_versions, skill_rejections, context_notes, optimizer_reports TO brain_app;
GRANT UPDATE (commission) ON fills TO brain_app;
GRANT SELECT, INSERT, UPDATE ON agent_deliveries, app_state, ingress_receipts, equity_history TO brain_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON bus_subscriptions, bus_consumers, positions TO brain_app;
GRANT SELECT, INSERT ON orders, accounts, bars TO brain_app;
GRANT UPDATE (status, filled_at, fill_price, broker_order_id, updated_at) ON orders TO brain_app;
GRANT UPDATE (cash, equity, high_water_mark, day_start_equity, day, margin_used, updated_at)
    ON accounts TO brain_app;
GRANT SELECT ON halts, operator_pages, optimizer_applies, shadow_experiments, bus_backlog TO brain_app;
-- the optimizer run marks the experiments its report shows
GRANT UPDATE (reported_in) ON shadow_experiments TO brain_app;

-- brain_watchdog reads everything, raises halts, and at L4 flattens through the paper state.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO brain_watchdog;
GRANT INSERT ON halts, agent_journal, operator_pages, orders, fills, agent_messages TO brain_watchdog;
GRANT INSERT, UPDATE ON app_state, equity_history TO brain_watchdog;
GRANT UPDATE ON orders, positions, accounts TO brain_watchdog;
GRANT DELETE ON positions TO brain_watchdog;

-- brain_operator (brainctl) reads everything, raises manual halts and alone lifts them.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO brain_operator;
GRANT INSERT ON halts, agent_journal, optimizer_applies, agent_messages TO brain_operator;
GRANT UPDATE (resumed_at, resumed_by, resume_reason, forced) ON halts TO brain_operator;
GRANT INSERT, UPDATE ON app_state TO brain_operator;
GRANT UPDATE ON agent_deliveries TO brain_operator;
GRANT UPDATE (locked) ON accounts TO brain_operator;

-- Every id sequence but shadow_experiments': its rows are inserted only over the admin
-- connection, and no role was given its sequence.
GRANT USAGE ON SEQUENCE agent_messages_id_seq, agent_journal_id_seq, llm_cost_ledger_id_seq,
    halts_id_seq, operator_pages_id_seq, orders_id_seq, fills_id_seq, skill_versions_id_seq,
    skill_rejections_id_seq, context_notes_id_seq, optimizer_reports_id_seq,
    optimizer_applies_id_seq
    TO brain_app, brain_watchdog, brain_operator;
