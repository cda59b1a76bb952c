-- The halt gate and grants as the initial revision set them.
DROP POLICY app_state_watchdog_and_operator ON app_state;
DROP POLICY app_state_brain_updates ON app_state;
DROP POLICY app_state_brain_inserts ON app_state;
DROP POLICY app_state_read ON app_state;
ALTER TABLE app_state DISABLE ROW LEVEL SECURITY;

REVOKE UPDATE (cash, equity, high_water_mark, day_start_equity, day, margin_used, updated_at)
    ON accounts FROM brain_app;
GRANT UPDATE, DELETE ON accounts TO brain_app;
REVOKE UPDATE (status, filled_at, fill_price, broker_order_id, updated_at) ON orders FROM brain_app;
GRANT UPDATE ON orders TO brain_app;

DROP TRIGGER orders_refuse_revival_while_halted ON orders;
DROP TRIGGER orders_refuse_while_halted ON orders;
CREATE TRIGGER orders_refuse_while_halted
    BEFORE INSERT ON orders
    FOR EACH ROW WHEN (NEW.intent = 'open')
    EXECUTE FUNCTION refuse_opening_order_while_halted();
CREATE OR REPLACE FUNCTION refuse_opening_order_while_halted() RETURNS trigger
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
ALTER FUNCTION refuse_opening_order_while_halted() RESET search_path;
