"""What a statement is, from its first words in the upper-cased masked text (lexer.py): KIND's groups."""

from __future__ import annotations

import re

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


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<\w+>", "(?:", pattern)


# Each statement is matched once, here. `alter_skip`: the common pg_dump ALTERs (OWNER TO, a column's DEFAULT),
# skipped without being read. `skip`: defines nothing a query can read. `create_skip`: a skipped CREATE that is
# neither CREATE_TABLE nor CREATE_VIEW (a dump has one or two per table). `create`: any other CREATE. The first
# words tell the groups apart, so their order only matters within ALTER and within CREATE; the CREATEs come last,
# where no other statement tries them.
KIND = re.compile(
    r"\s*(?:(?P<alter_skip>ALTER\s+(?:(?!TABLE\s)|TABLE\s+(?:ONLY\s+)?\S+\s+(?:OWNER\s+TO|ALTER\s+COLUMN\s+\S+\s+"
    r"SET\s+DEFAULT|ENABLE|DISABLE|CLUSTER|REPLICA)\s))"
    r"|(?P<alter>ALTER\s)|(?P<comment>COMMENT\s+ON\s)|(?P<drop>DROP\s)|(?P<rename>RENAME\s)"
    r"|(?P<skip>(?:SET|SELECT|GRANT|REVOKE|USE|BEGIN|COMMIT|START|END|ROLLBACK|PRAGMA|LOCK|UNLOCK|INSERT|REPLACE|"
    r"UPDATE|DELETE|COPY|VACUUM|ANALYZE|EXEC|EXECUTE|DECLARE|PRINT|IF|RAISERROR|SAVEPOINT|RELEASE|CHECKPOINT|"
    r"REINDEX|REFRESH|CLUSTER|DISCARD|RESET|LISTEN|NOTIFY|SECURITY|TRUNCATE|VALUES|INSTALL|LOAD|ATTACH|DETACH|"
    r"CALL|DO|SHOW|DESCRIBE|EXPLAIN|FLUSH|OPTIMIZE|REPAIR|WITH|DBCC|DEALLOCATE|OPEN|CLOSE|FETCH|WHILE|RETURN|"
    r"CHECKSUM|KILL|BACKUP|RESTORE|IMPORT|EXPORT)(?![\w$]))"
    rf"|(?P<create_skip>(?!{_unnamed(CREATE_TABLE.pattern)})(?!{_unnamed(CREATE_VIEW.pattern)}){_SKIPPED_CREATE})"
    r"|(?P<create>CREATE\s))")
SKIP_GROUPS = frozenset({"create_skip", "alter_skip", "skip"})
