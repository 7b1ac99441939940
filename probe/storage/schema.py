"""Every table, index and trigger of the database, as statements (one each, so that a
migration can run them inside its own transaction: ``executescript`` would commit first).

Release 0.1.0 created these from five modules; the text here is what that release wrote,
``IF NOT EXISTS`` throughout, so a file it made is adopted as it is.
"""

from __future__ import annotations

# The ledger's first entry follows this hash (probe.ledger.chain seals with the same value).
GENESIS = "0" * 64

# Every probe result (probe.store). The quoted names are sqlite-utils' spelling in 0.1.0.
RESULTS = (
    """CREATE TABLE IF NOT EXISTS "results" (
   "id" INTEGER PRIMARY KEY,
   "ts" TEXT NOT NULL,
   "endpoint" TEXT NOT NULL,
   "kind" TEXT,
   "check_name" TEXT NOT NULL,
   "outcome" TEXT NOT NULL,
   "http_status" INTEGER,
   "latency_s" REAL,
   "attempts" INTEGER,
   "url" TEXT,
   "message" TEXT,
   "details" TEXT
)""",
    'CREATE INDEX IF NOT EXISTS "idx_results_endpoint_check_name_id" '
    'ON "results" ("endpoint", "check_name", "id")',
    'CREATE INDEX IF NOT EXISTS "idx_results_endpoint_id" ON "results" ("endpoint", "id")',
    'CREATE INDEX IF NOT EXISTS "idx_results_ts" ON "results" ("ts")',
)

# The hash-chained ledger (probe.ledger): append-only by triggers; an INSERT must extend
# the chain (next id, previous hash), which also stops INSERT OR REPLACE from deleting.
LEDGER = (
    """CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    severity TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    event TEXT NOT NULL,
    pattern TEXT NOT NULL,
    check_name TEXT,
    outcome TEXT,
    first_row INTEGER,
    last_row INTEGER,
    url TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL UNIQUE,
    observed_at TEXT
)""",
    "CREATE INDEX IF NOT EXISTS ledger_endpoint ON ledger (endpoint, id)",
    "CREATE INDEX IF NOT EXISTS ledger_ts ON ledger (ts)",
    """CREATE TRIGGER IF NOT EXISTS ledger_no_update BEFORE UPDATE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS ledger_no_delete BEFORE DELETE ON ledger
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: DELETE refused'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS ledger_extends_chain BEFORE INSERT ON ledger
WHEN NEW.id IS NOT (SELECT COALESCE(MAX(id), 0) + 1 FROM ledger)
  OR NEW.prev_hash IS NOT COALESCE((SELECT hash FROM ledger ORDER BY id DESC LIMIT 1),
                                   '{GENESIS}')
BEGIN SELECT RAISE(ABORT, 'ledger is append-only: an entry must extend the chain'); END""",
)

# Each endpoint's verdict, kept across a restart (probe.storage.verdicts).
ENDPOINT_STATE = (
    """CREATE TABLE IF NOT EXISTS endpoint_state (
    endpoint TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    data TEXT NOT NULL
)""",
)

# Daily counts of results that retention removed (probe.storage.retention).
RESULTS_ROLLUP = (
    """CREATE TABLE IF NOT EXISTS results_rollup (
    day TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    check_name TEXT NOT NULL,
    outcome TEXT NOT NULL,
    results INTEGER NOT NULL,
    latency_s_sum REAL NOT NULL,
    latency_s_max REAL NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    PRIMARY KEY (day, endpoint, check_name, outcome)
)""",
)

# Maintenance windows started from the command line (probe.maintenance.store).
MAINTENANCE = (
    """CREATE TABLE IF NOT EXISTS maintenance (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    endpoint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    ends_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    started_by TEXT NOT NULL,
    ended_at TEXT,
    ended_by TEXT
)""",
    "CREATE INDEX IF NOT EXISTS maintenance_by_end ON maintenance (ends_at)",
)

# Hourly availability counts for the status page (probe.status.uptime).
UPTIME_HOURLY = (
    """CREATE TABLE IF NOT EXISTS uptime_hourly (
    endpoint TEXT NOT NULL,
    hour TEXT NOT NULL,
    observed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    PRIMARY KEY (endpoint, hour)
) WITHOUT ROWID""",
)

# Seconds each endpoint spent in each verdict state, per hour (probe.status.uptime): uptime
# by time, not by counts of observations. Added by migration 3.
STATE_HOURLY = (
    """CREATE TABLE IF NOT EXISTS state_hourly (
    endpoint TEXT NOT NULL,
    hour TEXT NOT NULL,
    state TEXT NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (endpoint, hour, state)
) WITHOUT ROWID""",
)
# The status page's incident history: the ledger's incident entries by event (migration 3).
LEDGER_BY_EVENT = ("CREATE INDEX IF NOT EXISTS ledger_event ON ledger (event, id)",)

# A fleet incident's link in ledger entries (structured, hashed when set), and the index the
# writer looks an entry's identity up by (a replay appends nothing twice): migration 4.
LEDGER_INCIDENT_COLUMNS = ("incident", "members")
LEDGER_BY_OBSERVATION = (
    "CREATE INDEX IF NOT EXISTS ledger_observed ON ledger (endpoint, observed_at)",)

# The probe that wrote each ledger entry, one of an HA pair's (migration 5).
LEDGER_INSTANCE = "ALTER TABLE ledger ADD COLUMN instance TEXT"

# What the baselines of the Meta-Patterns need across a restart (probe.storage.baselines,
# migration 6):
# per endpoint, check, metric and hour, the hour's kept samples (a JSON list of at most 16
# numbers), how many were seen and the result rows they came from.
BASELINE_HOURS = (
    """CREATE TABLE IF NOT EXISTS baseline_hours (
    endpoint TEXT NOT NULL,
    check_name TEXT NOT NULL,
    metric TEXT NOT NULL,
    hour TEXT NOT NULL,
    samples TEXT NOT NULL,
    seen INTEGER NOT NULL,
    first_row INTEGER,
    last_row INTEGER,
    PRIMARY KEY (endpoint, check_name, metric, hour)
) WITHOUT ROWID""",
    "CREATE INDEX IF NOT EXISTS baseline_hours_by_hour ON baseline_hours (hour)",
)

# Results are no longer indexed by (endpoint, id), migration 7: every row inserted updated
# that B-tree at a page of the endpoint's own (the newest rows of 25,000 endpoint-checks are
# as many pages), 5.4 of the writer's 19.1 us of CPU per row on a file of 1,000,000 rows
# (bench/store.py's file, batches of 1,367). An endpoint's history is read through the index
# on (endpoint, check_name, id), newest rows of each check merged (probe.store.history).
RESULTS_BY_ENDPOINT_DROPPED = 'DROP INDEX IF EXISTS "idx_results_endpoint_id"'

TABLES = ("results", "ledger", "endpoint_state", "results_rollup", "maintenance",
          "uptime_hourly", "state_hourly", "baseline_hours")
RELEASE_0_1_0 = (*RESULTS, *LEDGER, *ENDPOINT_STATE, *RESULTS_ROLLUP, *MAINTENANCE,
                 *UPTIME_HOURLY)
