"""The verified-query memory's pure parts: the schema fingerprint (tables, columns, types; not spacing, comments,
order or quoting), a question's shape (its words without its values), and re-binding a verified query to a new
question's values (only where the old values are, and never a guess)."""

from __future__ import annotations

import pytest

from gateway.memory.fingerprint import schema_fingerprint
from gateway.memory.question import question_shape
from gateway.memory.rebind import rebind

SINGER = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Age int)"
NAMES = frozenset({"singer", "singer_id", "name", "country", "age"})


@pytest.mark.parametrize("same", [
    "create table singer (singer_id INT, name TEXT, country TEXT, age INT)",
    "CREATE TABLE singer (\n  Singer_ID int, -- the key\n  Name text, /* shown */ Country text,\n  Age int\n);",
    'CREATE TABLE "singer" ("Singer_ID" int, "Name" text, "Country" text, "Age" int)',
])
def test_the_fingerprint_ignores_spacing_comments_case_and_quoting(same: str) -> None:
    assert schema_fingerprint(same) == schema_fingerprint(SINGER)


@pytest.mark.parametrize("other", [
    "CREATE TABLE singer (Singer_ID int, Name text, Country text)",  # a column fewer
    "CREATE TABLE singer (Singer_ID int, Name text, Country text, Age text)",  # a type changed
    "CREATE TABLE singers (Singer_ID int, Name text, Country text, Age int)",  # the table renamed
    SINGER + "\nCREATE TABLE concert (Concert_ID int)",  # a table more
    "CREATE TABLE singer (Age int, Country text, Name text, Singer_ID int)",  # the columns reordered: SELECT *
])
def test_the_fingerprint_changes_with_tables_columns_and_types(other: str) -> None:
    assert schema_fingerprint(other) != schema_fingerprint(SINGER)


def test_a_questions_shape_takes_out_quoted_text_numbers_and_names_inside_the_sentence() -> None:
    shape = question_shape("How many singers from France are older than 30 and named 'Jo Ann'?")
    assert shape.template == "how many singers from \u2039v\u203a are older than \u2039n\u203a and named \u2039q\u203a"
    assert [(v.text, v.number) for v in shape.values] == [("France", False), ("30", True), ("Jo Ann", False)]
    # The first word is not a name; case, spacing and the final mark don't change the shape.
    assert question_shape("how many  singers from Spain are older than 45 and named \"Al\"").key == shape.key
    assert question_shape("How many singers from France are younger than 30?").key != shape.key


@pytest.mark.parametrize(("old_question", "sql", "new_question", "expected"), [
    ("Singers from France older than 30?", "SELECT Name FROM singer WHERE Country = 'France' AND Age > 30",
     "singers from Spain older than 45", "SELECT Name FROM singer WHERE Country = 'Spain' AND Age > 45"),
    # The training data's double quotes, lower case and LIKE patterns keep their form.
    ("Singers from France?", 'SELECT Name FROM singer WHERE Country = "France"',
     "Singers from Peru?", 'SELECT Name FROM singer WHERE Country = "Peru"'),
    ("Singers from France?", "SELECT Name FROM singer WHERE lower(Country) = 'france'",
     "Singers from Peru?", "SELECT Name FROM singer WHERE lower(Country) = 'peru'"),
    ("Singers named like 'Smith'?", "SELECT Name FROM singer WHERE Name LIKE '%Smith%'",
     'Singers named like "O\'Hara"?', "SELECT Name FROM singer WHERE Name LIKE '%O''Hara%'"),
    ("Singers older than 30?", "SELECT Name FROM singer WHERE Age > 30.0",
     "Singers older than 31.5?", "SELECT Name FROM singer WHERE Age > 31.5"),
    # A name in the question's own words: only the part that differs is the value.
    ("How many flights depart from City Aberdeen?",
     'SELECT COUNT(*) FROM FLIGHTS AS T1 JOIN AIRPORTS AS T2 ON T1.SourceAirport = T2.AirportCode '
     'WHERE T2.City = "Aberdeen"', "How many flights depart from City Dunmore?",
     'SELECT COUNT(*) FROM FLIGHTS AS T1 JOIN AIRPORTS AS T2 ON T1.SourceAirport = T2.AirportCode '
     'WHERE T2.City = "Dunmore"'),
    # The same value twice in the question, the same new value twice: every place gets it.
    ("Orchestras founded before 2010 and after 2010?",
     "SELECT Name FROM singer WHERE Age < 2010 INTERSECT SELECT Name FROM singer WHERE Age > 2010",
     "Orchestras founded before 2017 and after 2017?",
     "SELECT Name FROM singer WHERE Age < 2017 INTERSECT SELECT Name FROM singer WHERE Age > 2017"),
    # Nothing changed: the verified query as it is, even where it holds no value at all.
    ("List the Name of singers", "SELECT Name FROM singer", "list the Name of singers.", "SELECT Name FROM singer"),
])
def test_rebinding_puts_the_new_values_where_the_old_ones_were(old_question: str, sql: str, new_question: str,
                                                               expected: str) -> None:
    assert rebind(sql, question_shape(old_question), question_shape(new_question), NAMES) == expected


@pytest.mark.parametrize(("old_question", "sql", "new_question"), [
    # A value the query does not hold: "Name" there is a column, not a value; another word is another column.
    ("List the Name of singers", "SELECT Name FROM singer", "List the Country of singers"),
    # The same old value twice, bound to different new ones: which literal is which is not known.
    ("Singers aged 30 or 30?", "SELECT Name FROM singer WHERE Age = 30 OR Age = 30", "Singers aged 30 or 40?"),
    # Another question (other words), or a value of another kind.
    ("Singers from France?", "SELECT Name FROM singer WHERE Country = 'France'", "Concerts in France?"),
    ("Singers older than 30?", "SELECT Name FROM singer WHERE Age > 30", "Singers older than Bob?"),
    # A quoted code and a name are not the same question ("from 'APG'" vs "from City Aberdeen").
    ("How many flights depart from 'APG'?", 'SELECT count(*) FROM FLIGHTS WHERE SourceAirport = "APG"',
     "How many flights depart from City Aberdeen?"),
    # A double-quoted word the schema has is a column: never a place for a value.
    ("Singers with Name?", 'SELECT "Name" FROM singer', "Singers with Age?"),
])
def test_rebinding_refuses_to_guess(old_question: str, sql: str, new_question: str) -> None:
    assert rebind(sql, question_shape(old_question), question_shape(new_question), NAMES) is None


def test_a_quoted_value_in_the_question_is_escaped_in_the_query() -> None:
    rebound = rebind("SELECT Name FROM singer WHERE Country = 'France'", question_shape("Singers from 'France'?"),
                     question_shape('Singers from "x\' OR 1=1 --"?'), NAMES)
    assert rebound == "SELECT Name FROM singer WHERE Country = 'x'' OR 1=1 --'"
    import sqlglot

    assert sqlglot.parse_one(rebound, read="sqlite").find(sqlglot.exp.Or) is None  # still one comparison
