"""Target engines: does the transpiled query compile on a real engine of the analyst's dialect, against the
request's schema translated to it? One concern a module:

    verdict.py   TargetCheck: the level reached ("engine", "translation", None) and what the engine said - a leaf
    ddl.py       the schema as the target's database holds it (names as written, value-preserving types)
    duck.py      DuckDB in process, bounded
    postgres.py  PostgreSQL through a configured scratch database (temporary tables, PREPARE, ROLLBACK)
    mysql.py     MySQL / MariaDB through a configured scratch database (the same, with TEMPORARY tables)
    pool.py      the bounded connection pool both use, and what they do around it (PooledTarget)
    engines.py   TargetEngines: which engine answers for which dialect
"""

from gateway.sql_check.target.ddl import target_tables, target_type
from gateway.sql_check.target.engines import TargetEngines
from gateway.sql_check.target.verdict import TargetCheck, TargetLevel

__all__ = ["TargetCheck", "TargetEngines", "TargetLevel", "target_tables", "target_type"]
