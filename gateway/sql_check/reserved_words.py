"""Words a target database reserves, so that a name the model wrote unquoted (SQLite lets `desc`, `user`, `left`
pass as column names) is quoted when the query is transpiled. A leaf: imports nothing of the gateway's.

sqlglot knows the reserved words of some dialects (MySQL, DuckDB, BigQuery, Redshift, Trino...); the lists here
fill the gaps for the others, from each vendor's reference. Quoting a word that did not need it is harmless
(the transpiler folds the name the way the target folds unquoted names), missing one is a syntax error or,
worse, a different meaning (`SELECT user FROM t` is the session user in PostgreSQL and SQL Server)."""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    return frozenset(text.lower().split())


# Reserved in SQL:2016 and by most engines; applied to every target as a floor.
_COMMON = _words("""
    all alter and any as asc between both by case cast check collate column constraint create cross current
    current_date current_time current_timestamp current_user default delete desc distinct drop else end except
    exists false fetch for foreign from full grant group having in inner insert intersect into is join lateral
    leading left like limit localtime localtimestamp natural not null of offset on only or order outer
    primary references right select session_user set some system_user table then to trailing true union
    unique update user using values when where window with
""")

# PostgreSQL: the "reserved" and "reserved (can be function or type)" words of Appendix C.
_POSTGRES = _words("""
    all analyse analyze and any array as asc asymmetric authorization binary both case cast check collate
    collation column concurrently constraint create cross current_catalog current_date current_role
    current_schema current_time current_timestamp current_user default deferrable desc distinct do else end
    except false fetch for foreign freeze from full grant group having ilike in initially inner intersect into
    is isnull join lateral leading left like limit localtime localtimestamp natural not notnull null offset on
    only or order outer overlaps placing primary references returning right select session_user similar some
    symmetric system_user table tablesample then to trailing true union unique user using variadic verbose when
    where window with
""")

# SQL Server: the reserved keywords of the Transact-SQL reference.
_TSQL = _words("""
    add all alter and any as asc authorization backup begin between break browse bulk by cascade case check
    checkpoint close clustered coalesce collate column commit compute constraint contains containstable continue
    convert create cross current current_date current_time current_timestamp current_user cursor database dbcc
    deallocate declare default delete deny desc disk distinct distributed double drop dump else end errlvl
    escape except exec execute exists exit external fetch file fillfactor for foreign freetext freetexttable
    from full function goto grant group having holdlock identity identity_insert identitycol if in index inner
    insert intersect into is join key kill left like lineno load merge national nocheck nonclustered not null
    nullif of off offsets on open opendatasource openquery openrowset openxml option or order outer over percent
    pivot plan precision primary print proc procedure public raiserror read readtext reconfigure references
    replication restore restrict return revert revoke right rollback rowcount rowguidcol rule save schema
    securityaudit select semantickeyphrasetable semanticsimilaritydetailstable semanticsimilaritytable
    session_user set setuser shutdown some statistics system_user table tablesample textsize then to top tran
    transaction trigger truncate try_convert tsequal union unique unpivot update updatetext use user values
    varying view waitfor when where while with within writetext
""")

# Snowflake: the reserved and limited keywords of its reference.
_SNOWFLAKE = _words("""
    account all alter and any as between by case cast check column connect connection constraint create cross
    current current_date current_time current_timestamp current_user database delete distinct drop else exists
    false following for from full grant group gscluster having ilike in increment inner insert intersect into
    is issue join lateral left like localtime localtimestamp minus natural not null of on or order organization
    qualify regexp revoke right rlike row rows sample schema select set some start table tablesample then to
    trigger true try_cast union unique update using values view when whenever where window with
""")

# Oracle: V$RESERVED_WORDS with reserved = 'Y'.
_ORACLE = _words("""
    access add all alter and any as asc audit between by char check cluster column comment compress connect
    create current date decimal default delete desc distinct drop else exclusive exists file float for from
    grant group having identified immediate in increment index initial insert integer intersect into is level
    like lock long maxextents minus mlslabel mode modify noaudit nocompress not nowait null number of offline on
    online option or order pctfree prior public raw rename resource revoke row rowid rownum rows select session
    set share size smallint start successful synonym sysdate table then to trigger uid union unique update user
    validate values varchar varchar2 view whenever where with
""")

_BY_DIALECT: dict[str, frozenset[str]] = {
    "postgres": _POSTGRES,
    "redshift": _POSTGRES,
    "tsql": _TSQL,
    "snowflake": _SNOWFLAKE,
    "oracle": _ORACLE,
}


def reserved_in(dialect: str, known_to_sqlglot: frozenset[str] = frozenset()) -> frozenset[str]:
    """Lower-cased words `dialect` reserves: the common floor, this module's list and sqlglot's own."""
    return _COMMON | _BY_DIALECT.get(dialect, frozenset()) | known_to_sqlglot
