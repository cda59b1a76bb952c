-- The halt gate, held against everything brain_app can write, not only against halts:
-- - the gate reads public.halts with a fixed search_path (pg_temp last), so a temporary table
--   named halts in the brain's session cannot stand in for the real one;
-- - it also runs when an order's intent is changed, or when an opening order that was done
--   (cancelled, filled, rejected) is made live again, not only when an order is inserted;
-- - brain_app updates only the columns of orders and accounts its brokers write: an order's
--   terms and an account's L4 lock are not its to change, and it cannot delete an account;
-- - brain_app cannot write the watchdog's heartbeat, which the executor and ingress read
--   before anything reaches a broker.
CREATE OR REPLACE FUNCTION refuse_opening_order_while_halted() RETURNS trigger
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
DROP TRIGGER orders_refuse_while_halted ON orders;
CREATE TRIGGER orders_refuse_while_halted
    BEFORE INSERT OR UPDATE OF intent ON orders
    FOR EACH ROW WHEN (NEW.intent = 'open')
    EXECUTE FUNCTION refuse_opening_order_while_halted();
CREATE TRIGGER orders_refuse_revival_while_halted
    BEFORE UPDATE OF status ON orders
    FOR EACH ROW WHEN (NEW.intent = 'open' AND NEW.status IN ('new', 'working')
                       AND OLD.status NOT IN ('new', 'working'))
    EXECUTE FUNCTION refuse_opening_order_while_halted();

REVOKE UPDATE ON orders FROM brain_app;
GRANT UPDATE (status, filled_at, fill_price, broker_order_id, updated_at) ON orders TO brain_app;
REVOKE UPDATE, DELETE ON accounts FROM brain_app;
GRANT UPDATE (cash, equity, high_water_mark, day_start_equity, day, margin_used, updated_at)
    ON accounts TO brain_app;

ALTER TABLE app_state ENABLE ROW LEVEL SECURITY;
CREATE POLICY app_state_read ON app_state FOR SELECT USING (true);
CREATE POLICY app_state_brain_inserts ON app_state FOR INSERT TO brain_app
    WITH CHECK (key <> 'heartbeat:watchdog');
CREATE POLICY app_state_brain_updates ON app_state FOR UPDATE TO brain_app
    USING (key <> 'heartbeat:watchdog') WITH CHECK (key <> 'heartbeat:watchdog');
CREATE POLICY app_state_watchdog_and_operator ON app_state FOR ALL TO brain_watchdog, brain_operator
    USING (true) WITH CHECK (true);
