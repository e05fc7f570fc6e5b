"""Properties of the guard over generated input: it never raises, and what it accepts really is one read query."""

from __future__ import annotations

import sqlglot
import sqlglot.expressions as exp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.sql_check import (
    SqlPolicy,
    check_sql,
    extract_sql,
    find_create_tables,
    parse_schema,
    read_schema,
)

DIALECTS = st.sampled_from(["sqlite", "postgres", "mysql", "duckdb", "tsql"])
POLICIES = st.sampled_from(list(SqlPolicy))
BOUNDED = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Independent of the guard's own allow-list: node types that write, lock, or change the session.
WRITE_NODES = (
    exp.DML, exp.DDL, exp.Drop, exp.Alter, exp.TruncateTable, exp.Command, exp.Set, exp.Pragma, exp.Attach,
    exp.Detach, exp.Copy, exp.Grant, exp.Revoke, exp.Into, exp.Lock, exp.Transaction, exp.Commit, exp.Rollback,
    exp.Use, exp.Merge, exp.LoadData,
)
DANGEROUS_NAMES = {"pg_sleep", "sleep", "benchmark", "load_file", "pg_read_file", "lo_import", "dblink",
                   "xp_cmdshell", "readfile", "writefile", "load_extension", "sys_exec"}

SOUP_TOKENS = [
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "JOIN", "ON", "AS", "GROUP BY", "ORDER BY", "HAVING", "LIMIT",
    "UNION", "WITH", "INSERT INTO", "VALUES", "UPDATE", "SET", "DELETE", "DROP TABLE", "CREATE TABLE", "ALTER",
    "TRUNCATE", "PRAGMA", "ATTACH", "COPY", "INTO", "FOR UPDATE", "RETURNING", "BEGIN", "COMMIT", "GRANT",
    "CASE", "WHEN", "THEN", "ELSE", "END", "IN", "EXISTS", "BETWEEN", "LIKE", "IS NULL", "DISTINCT", "OVER",
    "t", "u", "a", "b", "T1", "T2", "T1.a", "*", "1", "0.5", "'x'", "'a;b'", '"q"', "`w`", "NULL",
    "(", ")", "(", ")", ",", ";", "=", "<", ">", "+", "-", "||", ".", "--", "-- c\n", "/*", "*/", "/* c */",
    "#", "$$", "\\", "'", '"', "count(*)", "max(a)", "pg_sleep(1)", "sleep(1)", "load_file('x')", "now()",
    "@@version", "@x", ":=", "?", "$1", "\n", "\t",
    # table references outside the schema: files, catalogs, other schemas, reserved words posing as aliases
    "'/etc/passwd'", '"secrets.csv"', "sqlite_master", "pg_shadow", "information_schema.tables", "dbstat",
    "duckdb_settings()", "other.t", "main.t", "SHUTDOWN", "CHECKPOINT", "WITH (NOLOCK)", "LATERAL",
    "generate_series(1, 10)",
]
SOUP = st.lists(st.sampled_from(SOUP_TOKENS), min_size=1, max_size=40).map(" ".join)


def statements(sql: str, dialect: str) -> list[exp.Expr]:
    parsed = sqlglot.parse(sql, read=dialect)
    return [node for node in parsed if node is not None and not isinstance(node, exp.Semicolon)]


def assert_really_one_read_query(sql: str, dialect: str, schema_tables: set[str] | None = None) -> None:
    """One read-only query; with `schema_tables`, every table it names is one of them or a CTE it defines."""
    parsed = statements(sql, dialect)
    assert len(parsed) == 1
    root = parsed[0]
    assert isinstance(root, exp.Query)
    ctes = {cte.alias_or_name.lower() for cte in root.find_all(exp.CTE)}
    for node in root.walk():
        assert not isinstance(node, WRITE_NODES), type(node).__name__
        if isinstance(node, exp.Anonymous):
            assert node.name.lower() not in DANGEROUS_NAMES
        if schema_tables is not None and isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            assert node.name.lower() in schema_tables | ctes, node.sql(dialect)
            assert {q.lower() for q in (node.db, node.catalog) if q} <= {"main", "public", "dbo"}, node.sql(dialect)


@BOUNDED
@given(text=st.text(max_size=400), dialect=DIALECTS, policy=POLICIES, schema=st.none() | st.text(max_size=200))
def test_check_sql_never_raises_on_arbitrary_text(text: str, dialect: str, policy: SqlPolicy,
                                                  schema: str | None) -> None:
    result = check_sql(text, schema=schema, dialect=dialect, policy=policy)
    assert result.valid == (result.error_code is None)
    assert result.error_code in (None, "unsafe_sql", "invalid_sql", "ungrounded_sql")
    if policy is SqlPolicy.READ_ONLY and result.valid:
        assert_really_one_read_query(text, dialect)


@BOUNDED
@given(sql=SOUP, dialect=DIALECTS)
def test_whatever_read_only_accepts_from_token_soup_is_one_read_query(sql: str, dialect: str) -> None:
    result = check_sql(sql, schema="CREATE TABLE t (a INT, b TEXT) CREATE TABLE u (a INT)", dialect=dialect)
    assert result.error_code in (None, "unsafe_sql", "invalid_sql", "ungrounded_sql")
    if result.valid:
        assert result.read_only and result.statement_type is not None
        assert_really_one_read_query(sql, dialect, schema_tables={"t", "u"})


@BOUNDED
@given(sql=SOUP, dialect=DIALECTS)
def test_allow_writes_never_accepts_ddl_or_two_statements(sql: str, dialect: str) -> None:
    result = check_sql(sql, schema=None, dialect=dialect, policy=SqlPolicy.ALLOW_WRITES)
    if result.valid:
        parsed = statements(sql, dialect)
        assert len(parsed) == 1
        assert isinstance(parsed[0], exp.Query | exp.Insert | exp.Update | exp.Delete)
        assert not any(isinstance(node, exp.DDL | exp.Drop | exp.Alter | exp.Command | exp.Into | exp.Lock)
                       and not isinstance(node, exp.Insert) for node in parsed[0].walk())


# --- generated read queries over a known schema ------------------------------------------------------------------

SCHEMA = {"singer": ["singer_id", "name", "country", "age"], "concert": ["concert_id", "singer_id", "year"]}
SCHEMA_TEXT = " ".join(f"CREATE TABLE {table} ({', '.join(f'{c} VARCHAR' for c in columns)})"
                       for table, columns in SCHEMA.items())


@st.composite
def read_queries(draw: st.DrawFn) -> str:
    """SELECTs in the training data's style, using only the schema's tables and columns."""
    join = draw(st.booleans())
    if join:
        columns = [f"T1.{c}" for c in SCHEMA["singer"]] + [f"T2.{c}" for c in SCHEMA["concert"]]
        source = "singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id"
    else:
        table = draw(st.sampled_from(sorted(SCHEMA)))
        columns, source = SCHEMA[table], table
    picked = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=3, unique=True))
    aggregate = draw(st.sampled_from(["", "COUNT", "MAX", "MIN", "AVG", "SUM"]))
    projection = f"{aggregate}({picked[0]})" if aggregate else ", ".join(picked)
    if draw(st.booleans()):
        projection = "DISTINCT " + projection if not aggregate else projection
    sql = f"SELECT {projection} FROM {source}"
    conditions = draw(st.lists(st.tuples(st.sampled_from(columns), st.sampled_from(["=", "<>", ">", "<", "LIKE"]),
                                         st.sampled_from(["'x'", "1", "'%a%'", '"France"'])), max_size=3))
    if conditions:
        sql += " WHERE " + " AND ".join(f"{c} {op} {value}" for c, op, value in conditions)
    if not aggregate and draw(st.booleans()):
        sql += f" ORDER BY {picked[0]} {draw(st.sampled_from(['ASC', 'DESC']))} LIMIT {draw(st.integers(1, 99))}"
    return sql


@settings(max_examples=200, deadline=None)
@given(sql=read_queries(), dialect=st.sampled_from(["sqlite", "postgres", "mysql"]))
def test_generated_read_queries_pass_and_ground_cleanly(sql: str, dialect: str) -> None:
    result = check_sql(sql, schema=SCHEMA_TEXT, dialect=dialect)
    assert result.unknown_tables == ()
    if dialect == "postgres" and '"France"' in sql:
        # postgres reads "France" as a column name, which the schema lacks: refused as ungrounded
        assert result.error_code == "ungrounded_sql" and result.unknown_columns == ("France",)
    else:
        assert result.valid, result.problems
        assert result.unknown_columns == ()


@st.composite
def mutated_queries(draw: st.DrawFn) -> str:
    """A generated read query with a few tokens inserted, replaced or dropped: near misses of valid SQL."""
    words = draw(read_queries()).split(" ")
    for _ in range(draw(st.integers(1, 3))):
        position = draw(st.integers(0, len(words)))
        action = draw(st.sampled_from(["insert", "replace", "delete"]))
        if action == "insert" or position == len(words):
            words.insert(position, draw(st.sampled_from(SOUP_TOKENS)))
        elif action == "replace":
            words[position] = draw(st.sampled_from(SOUP_TOKENS))
        elif len(words) > 1:
            del words[position]
    return " ".join(words)


@settings(max_examples=400, deadline=None)
@given(sql=mutated_queries(), dialect=DIALECTS)
def test_whatever_read_only_accepts_from_mutated_queries_is_one_read_query(sql: str, dialect: str) -> None:
    result = check_sql(sql, schema=SCHEMA_TEXT, dialect=dialect)
    if result.valid:
        assert_really_one_read_query(sql, dialect, schema_tables=set(SCHEMA))


@settings(max_examples=100, deadline=None)
@given(sql=read_queries(), tail=st.sampled_from(["DROP TABLE singer", "DELETE FROM singer", "SELECT 1",
                                                 "UPDATE singer SET age = 1", "PRAGMA foreign_keys = OFF"]),
       separator=st.sampled_from([";", "; ", ";\n", " ; -- x\n"]))
def test_a_stacked_second_statement_is_always_refused(sql: str, tail: str, separator: str) -> None:
    result = check_sql(sql + separator + tail, schema=SCHEMA_TEXT)
    assert [problem.code for problem in result.problems] == ["multiple_statements"]


@settings(max_examples=100, deadline=None)
@given(sql=read_queries(), danger=st.sampled_from(sorted(DANGEROUS_NAMES)))
def test_a_dangerous_function_anywhere_is_refused(sql: str, danger: str) -> None:
    poisoned = f"SELECT * FROM ({sql}) AS s WHERE {danger}('x') IS NULL"
    result = check_sql(poisoned, schema=SCHEMA_TEXT, dialect="mysql")
    assert "forbidden_function" in [problem.code for problem in result.problems]


# --- the text helpers ---------------------------------------------------------------------------------------------


@BOUNDED
@given(text=st.text(max_size=400))
def test_text_helpers_never_raise(text: str) -> None:
    assert isinstance(extract_sql(text), str)
    assert isinstance(read_schema(text).fingerprint, str)
    assert isinstance(find_create_tables(text), str)
    assert isinstance(parse_schema(text), dict)


@settings(max_examples=100, deadline=None)
@given(order=st.permutations(sorted(SCHEMA)), spacing=st.sampled_from([" ", "\n", "  \t"]),
       upper=st.booleans(), separator=st.sampled_from([" ", "; ", ";\n"]))
def test_the_schema_fingerprint_is_invariant_under_layout(order: list[str], spacing: str, upper: bool,
                                                    separator: str) -> None:
    keyword = "CREATE TABLE" if upper else "create table"
    kind = "VARCHAR" if upper else "varchar"
    bodies = {table: f",{spacing}".join(f"{column} {kind}" for column in SCHEMA[table]) for table in order}
    text = separator.join(f"{keyword}{spacing}{table}{spacing}({bodies[table]})" for table in order)
    assert read_schema(text).fingerprint == read_schema(SCHEMA_TEXT).fingerprint
    assert parse_schema(text) == {table: frozenset(columns) for table, columns in SCHEMA.items()}
