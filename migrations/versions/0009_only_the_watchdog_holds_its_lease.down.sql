ALTER POLICY app_state_brain_inserts ON app_state WITH CHECK (key <> 'heartbeat:watchdog');
ALTER POLICY app_state_brain_updates ON app_state
    USING (key <> 'heartbeat:watchdog') WITH CHECK (key <> 'heartbeat:watchdog');
