"""The one schema reader (gateway/schema_model): what it reads from each construct dumps and people write, what it
keeps as unreadable (with the statement's text), how a query's table names resolve, and the prompt's text."""

from __future__ import annotations

import pytest

from gateway.schema_model import read_schema, schema_statements
from gateway.sql_check import find_create_tables


def columns(text: str) -> dict[str, list[str]]:
    return {table.qualified: [column.name for column in table.columns] for table in read_schema(text).tables}


@pytest.mark.parametrize(("text", "expected"), [
    # statement separators that hide in quotes, comments and bodies
    ("CREATE TABLE a (x text DEFAULT 'a;b', y int); CREATE TABLE b (z int)", {"a": ["x", "y"], "b": ["z"]}),
    ("CREATE TABLE a (x int) -- it's a comment; CREATE TABLE fake (q int)\n;CREATE TABLE b (z int)",
     {"a": ["x"], "b": ["z"]}),
    ("/* CREATE TABLE fake (q int); it's */ CREATE TABLE a (x int)", {"a": ["x"]}),
    ("# MySQL's comment\nCREATE TABLE a (x int) # trailing; too\n;", {"a": ["x"]}),
    ("CREATE FUNCTION f() RETURNS int AS $$ BEGIN CREATE TABLE fake (q int); RETURN 1; END; $$ LANGUAGE plpgsql;\n"
     "CREATE TABLE a (x int);", {"a": ["x"]}),
    ("CREATE TABLE [dbo].[a] ([x y] int)\nGO\nCREATE TABLE b (z int)\nGO 2\n", {"a": ["x y"], "b": ["z"]}),
    ("DELIMITER ;;\nCREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 1; END;;\nDELIMITER ;\n"
     "CREATE TABLE a (x int);", {"a": ["x"]}),
    ("CREATE TRIGGER t AFTER INSERT ON a BEGIN UPDATE a SET x = 1; END;\nCREATE TABLE a (x int);", {"a": ["x"]}),
    ("```sql\nCREATE TABLE a (x int)\n```", {"a": ["x"]}),
    # the other statements dumps hold, and table options
    ("SET search_path = ''; CREATE SCHEMA s; CREATE SEQUENCE q; CREATE TYPE m AS ENUM ('a');"
     "CREATE INDEX i ON a (x); INSERT INTO a VALUES (1); DROP TABLE IF EXISTS a; CREATE TABLE IF NOT EXISTS a (x int) "
     "ENGINE=InnoDB AUTO_INCREMENT=3; CREATE UNLOGGED TABLE b (y int); CREATE TABLE c (z int) WITHOUT ROWID, STRICT",
     {"a": ["x"], "b": ["y"], "c": ["z"]}),
    ("COPY a (x) FROM stdin;\n1\tit's; a row\n\\.\nCREATE TABLE a (x int);", {"a": ["x"]}),
    # columns that look like constraints, and constraints that look like columns
    ("CREATE TABLE a (index integer, key text, check_no int, KEY k (key), UNIQUE KEY (index), "
     "CONSTRAINT c CHECK ((index > 0)), PRIMARY KEY (index))", {"a": ["index", "key", "check_no"]}),
    # changes after CREATE TABLE
    ("CREATE TABLE a (x int, y int); ALTER TABLE a ADD COLUMN z text; ALTER TABLE a DROP COLUMN y;"
     "ALTER TABLE a RENAME COLUMN x TO w", {"a": ["w", "z"]}),
    ("CREATE TABLE p (id int, name text); CREATE TABLE c (extra int) INHERITS (p); "
     "CREATE TABLE d PARTITION OF p FOR VALUES IN (1)", {"p": ["id", "name"], "c": ["id", "name", "extra"],
                                                          "d": ["id", "name"]}),
    # views: an explicit list, a star over a table read before, a join
    ("CREATE TABLE t (a int, b text); CREATE VIEW v1 (x, y) AS SELECT a, b FROM t; CREATE VIEW v2 AS SELECT * FROM t;"
     "CREATE VIEW s.v3 AS SELECT t.a AS id, u.b FROM t JOIN t AS u ON u.a = t.a",
     {"t": ["a", "b"], "v1": ["x", "y"], "v2": ["a", "b"], "s.v3": ["id", "b"]}),
])
def test_what_is_read(text: str, expected: dict[str, list[str]]) -> None:
    model = read_schema(text)
    assert columns(text) == expected
    assert model.unreadable == ()


def test_keys_types_and_descriptions_are_kept() -> None:
    model = read_schema(
        "-- everyone who ever bought\n"
        "CREATE TABLE customers (\n"
        "  id serial PRIMARY KEY,\n"
        "  name varchar(40) NOT NULL, -- the customer's name\n"
        "  `note` text COMMENT 'free; text'\n"
        ");\n"
        "CREATE TABLE orders (id int, customer_id int, amount numeric(10, 2), "
        "CONSTRAINT fk FOREIGN KEY (customer_id) REFERENCES public.customers (id));\n"
        "ALTER TABLE ONLY orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id);\n"
        "COMMENT ON COLUMN orders.amount IS 'in euros, it''s';")
    customers, orders = model.tables
    assert customers.description == "everyone who ever bought" and customers.primary_key == ("id",)
    assert [(c.name, c.type, c.quote, c.description) for c in customers.columns] == [
        ("id", "serial", "", None), ("name", "varchar(40)", "", "the customer's name"),
        ("note", "text", "`", "free; text")]
    assert orders.primary_key == ("id",)
    assert [(key.columns, key.table, key.table_schema, key.ref_columns) for key in orders.foreign_keys] == [
        (("customer_id",), "customers", "", ("id",))]
    assert orders.column("AMOUNT") is not None and orders.column("amount").description == "in euros, it's"
    assert orders.column("amount").type == "numeric(10, 2)"


@pytest.mark.parametrize(("text", "name", "reason"), [
    ("memo(id, title)", "memo", "not a statement that defines a table"),
    ("CREATE TABLE odd (a int", "odd", "never closed"),
    ("CREATE TABLE t OF some_type", "t", "no column list"),
    ("CREATE TABLE t (a int); ALTER TABLE t SPLITZ a", "t", "not an action this reader knows"),
    ("CREATE VIEW v AS SELECT * FROM nowhere", "v", "can't be told"),
])
def test_what_can_t_be_read_is_listed_with_its_text_and_never_guessed(text: str, name: str, reason: str) -> None:
    model = read_schema(text)
    assert name not in {table.name for table in model.tables}
    (part,) = model.unreadable
    assert part.name == name and reason in part.reason and part.text in text
    assert model.lookup(name).unreadable == part


def test_a_name_resolves_in_its_schema_and_a_bare_name_shared_by_two_schemas_is_ambiguous() -> None:
    model = read_schema("CREATE TABLE sales.orders (a int); CREATE TABLE archive.orders (b int); "
                        "CREATE TABLE public.customers (c int); CREATE TABLE crm.contacts (d int)")
    assert model.lookup("orders", "sales").table.columns[0].name == "a"  # type: ignore[union-attr]
    assert model.lookup("ORDERS", "Archive").table.columns[0].name == "b"  # type: ignore[union-attr]
    assert [t.qualified for t in model.lookup("orders").ambiguous] == ["sales.orders", "archive.orders"]
    assert model.lookup("customers").table is model.lookup("customers", "public").table is not None
    assert model.lookup("contacts").table is not None  # the one table of that name, in any schema
    assert model.lookup("orders", "other").table is None and model.lookup("nowhere").unreadable is None


def test_the_prompt_shows_the_text_as_written_or_only_the_definitions_of_a_dump() -> None:
    plain = "CREATE TABLE head (age INTEGER); CREATE TABLE dept (id INTEGER)"
    assert read_schema(plain).prompt_text == plain  # the training data's shape, byte for byte
    dump = ("SET statement_timeout = 0;\nCREATE TABLE public.head (\n    age integer\n);\n"
            "ALTER TABLE public.head OWNER TO postgres;\nCREATE INDEX i ON public.head (age);\n"
            "CREATE VIEW public.old AS SELECT age FROM public.head;")
    assert read_schema(dump).prompt_text == ("CREATE TABLE public.head (\n    age integer\n);\n"
                                             "CREATE VIEW public.old AS SELECT age FROM public.head")


def test_the_chat_finder_keeps_each_statement_as_written() -> None:
    text = ("Tables:\nCREATE TABLE emp (\n  id int, -- the employee's id\n  name text\n)\n"
            "and what's CREATE TABLE dept (id int) for? Also CREATE VIEW v AS SELECT id FROM dept;\nThanks!")
    assert schema_statements(text) == ("CREATE TABLE emp (\n  id int, -- the employee's id\n  name text\n)",
                                       "CREATE TABLE dept (id int)", "CREATE VIEW v AS SELECT id FROM dept")
    schema = find_create_tables(text)
    assert columns(schema) == {"emp": ["id", "name"], "dept": ["id"], "v": ["id"]}


def test_reading_is_cached_per_text() -> None:
    text = "CREATE TABLE cached_model (a int)"
    assert read_schema(text) is read_schema(text)


def test_a_view_as_pg_dump_prints_it_keeps_its_column_types() -> None:
    # pg_dump wraps a view's joins in parentheses and qualifies every table (`public.customers`); reading only the
    # first table there lost the types of every column the joined ones gave.
    model = read_schema(
        "CREATE TABLE public.customers (id integer NOT NULL, \"first name\" text);\n"
        "CREATE TABLE sales.orders (id bigint NOT NULL, customer_id integer, amount numeric(10,2));\n"
        "CREATE VIEW sales.big_orders AS\n SELECT o.id,\n    o.amount,\n    c.\"first name\"\n"
        "   FROM (sales.orders o\n     JOIN public.customers c ON ((c.id = o.customer_id)))\n"
        "  WHERE (o.amount > (100)::numeric);\n")
    view = model.lookup("big_orders", "sales").table
    assert view is not None and view.types_known
    assert [(column.name, column.type) for column in view.columns] == [
        ("id", "bigint"), ("amount", "numeric(10,2)"), ("first name", "text")]
