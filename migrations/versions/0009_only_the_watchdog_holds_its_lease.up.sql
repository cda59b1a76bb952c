-- One watchdog acts at a time, the one holding `watchdog:lease` in app_state (see
-- watchdog_proc/lease.py). The brain must not be able to take that lease and so stand every
-- watchdog by: brain_app writes every key but the watchdog's own (`heartbeat:watchdog`, and
-- anything under `watchdog:`).
ALTER POLICY app_state_brain_inserts ON app_state
    WITH CHECK (key <> 'heartbeat:watchdog' AND key NOT LIKE 'watchdog:%');
ALTER POLICY app_state_brain_updates ON app_state
    USING (key <> 'heartbeat:watchdog' AND key NOT LIKE 'watchdog:%')
    WITH CHECK (key <> 'heartbeat:watchdog' AND key NOT LIKE 'watchdog:%');
