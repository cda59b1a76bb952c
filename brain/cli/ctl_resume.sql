-- name: unlock_accounts
-- Once no L4 halt is left in force, the accounts an L4 locked may trade again.
UPDATE accounts SET locked = false WHERE locked
