GRANT UPDATE (commission) ON fills TO brain_app;
