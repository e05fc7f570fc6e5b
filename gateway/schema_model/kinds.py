"""What a statement is, from its first words in the upper-cased masked text (lexer.py): KIND's groups."""

from __future__ import annotations

import re

from gateway.schema_model.alter import DUMPED_KEY
from gateway.schema_model.tables import CREATE_TABLE
from gateway.schema_model.views import CREATE_VIEW

# A CREATE of something no query reads (an index, a sequence, a routine...).
_SKIPPED_CREATE = (
    r"\s*CREATE\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:DEFINER\s*=\s*\S+\s+)?(?:(?:UNIQUE|CLUSTERED|NONCLUSTERED|"
    r"FULLTEXT|SPATIAL|BITMAP|TEMP|TEMPORARY|TRUSTED|PROCEDURAL|CONSTRAINT|DEFAULT|COLUMNSTORE|PRIMARY|XML)\s+)*"
    r"(?:INDEX|SEQUENCE|SCHEMA|TYPE|EXTENSION|FUNCTION|PROCEDURE|PROC|TRIGGER|DOMAIN|ROLE|USER|DATABASE|AGGREGATE|"
    r"OPERATOR|CAST|COLLATION|CONVERSION|POLICY|PUBLICATION|SUBSCRIPTION|RULE|STATISTICS|TEXT\s+SEARCH|EVENT|"
    r"LANGUAGE|SERVER|FOREIGN\s+DATA\s+WRAPPER|USER\s+MAPPING|MACRO|SECRET|TABLESPACE|ACCESS\s+METHOD|TRANSFORM|"
    r"SYNONYM|LOGIN|ASSEMBLY|PARTITION\s+FUNCTION|PARTITION\s+SCHEME|FULLTEXT\s+CATALOG|GROUP|CERTIFICATE|"
    r"MASTER\s+KEY|SYMMETRIC\s+KEY)(?![\w$])")

# Each statement is matched once, here. `alter_skip`: the common pg_dump ALTERs (OWNER TO, a column's DEFAULT),
# skipped without being read; `alter_key`: pg_dump's ADD CONSTRAINT PRIMARY / FOREIGN KEY, read from this match;
# `alter`: any other ALTER. `skip`: defines nothing a query can read. `create_table` and `create_view` are
# CREATE_TABLE and CREATE_VIEW, with their groups; `create_skip`: a CREATE of something no query reads; `create`:
# any other CREATE. The first words tell the ALTERs, the CREATEs and the others apart, so order only matters among
# the ALTERs and among the CREATEs (as the reader tries them). The CREATEs come last: no other statement tries them.
# (`\S++\s++`: a name then blanks, taken whole; giving some back could only put a blank where a word must start.)
KIND = re.compile(
    r"\s*(?:(?P<alter_skip>ALTER\s+(?:(?!TABLE\s)|TABLE\s+(?:ONLY\s+)?\S++\s++(?:OWNER\s+TO|ALTER\s+COLUMN\s+\S++\s++"
    r"SET\s+DEFAULT|ENABLE|DISABLE|CLUSTER|REPLICA)\s))"
    rf"|(?P<alter_key>{DUMPED_KEY})"
    r"|(?P<alter>ALTER\s)|(?P<comment>COMMENT\s+ON\s)|(?P<drop>DROP\s)|(?P<rename>RENAME\s)"
    r"|(?P<skip>(?:SET|SELECT|GRANT|REVOKE|USE|BEGIN|COMMIT|START|END|ROLLBACK|PRAGMA|LOCK|UNLOCK|INSERT|REPLACE|"
    r"UPDATE|DELETE|COPY|VACUUM|ANALYZE|EXEC|EXECUTE|DECLARE|PRINT|IF|RAISERROR|SAVEPOINT|RELEASE|CHECKPOINT|"
    r"REINDEX|REFRESH|CLUSTER|DISCARD|RESET|LISTEN|NOTIFY|SECURITY|TRUNCATE|VALUES|INSTALL|LOAD|ATTACH|DETACH|"
    r"CALL|DO|SHOW|DESCRIBE|EXPLAIN|FLUSH|OPTIMIZE|REPAIR|WITH|DBCC|DEALLOCATE|OPEN|CLOSE|FETCH|WHILE|RETURN|"
    r"CHECKSUM|KILL|BACKUP|RESTORE|IMPORT|EXPORT)(?![\w$]))"
    rf"|(?P<create_table>{CREATE_TABLE.pattern})|(?P<create_view>{CREATE_VIEW.pattern})"
    rf"|(?P<create_skip>{_SKIPPED_CREATE})|(?P<create>CREATE\s))")
SKIP_GROUPS = frozenset({"create_skip", "alter_skip", "skip"})
