#!/usr/bin/env bash
# The whole suite against the embedded PostgreSQL; in CI, the database-facing tests run a
# second time against the machine's PostgreSQL service when one answers on 127.0.0.1:5432.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
unset DATABASE_URL
mkdir -p test-artifacts
# The layer rules (pyproject.toml, [tool.importlinter]): a broken contract fails the run.
.venv/bin/lint-imports --no-cache
# The type checker (pyproject.toml, [tool.mypy]): a type error fails the run.
$PY -m mypy
$PY -m pytest -q "$@"

if [ "${CI:-}" = "true" ] && $PY - <<'PYEOF'
import sys, psycopg
try:
    psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
except Exception:
    sys.exit(1)
PYEOF
then
  echo "--- again against the PostgreSQL service on 127.0.0.1:5432"
  DATABASE_URL="postgresql://postgres@127.0.0.1:5432/postgres" $PY -m pytest -q tests/integration
fi
