-- Roles stay: they are cluster-wide and other databases on the server may use them.
DROP VIEW IF EXISTS bus_backlog;
DROP FUNCTION IF EXISTS bus_claim(text, integer, uuid, double precision);
DROP TABLE IF EXISTS optimizer_applies, optimizer_reports, context_notes, ingress_receipts,
    skill_rejections, skill_versions, equity_history, accounts, positions, fills, orders, bars,
    operator_pages, halts, app_state, llm_cost_ledger, agent_journal, agent_deliveries,
    bus_subscriptions, bus_consumers, agent_messages CASCADE;
DROP FUNCTION IF EXISTS refuse_opening_order_while_halted();
