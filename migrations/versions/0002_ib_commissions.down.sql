REVOKE UPDATE (commission) ON fills FROM brain_app;
