"""The one owner of the SQLite database: every table's schema (``schema``), the numbered
migrations that bring any file to it (``migrations``), the connection every reader and
writer opens (``database``), retention of raw results (``retention``) and the verdicts kept
across a restart (``verdicts``). Features ask this package; none creates a table."""
