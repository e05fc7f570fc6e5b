"""Databases synthesized from a schema (gateway/synth), the vote by results and the execution-match judge, on a
real SQLite: the rows respect keys and joins, carry the question's and the candidates' values, hold NULLs and
edge values, and are the same for the same request; candidates agree when they return the same rows."""

from __future__ import annotations

import sqlite3

from gateway.pipeline.candidates import Candidate
from gateway.pipeline.results_vote import results_vote
from gateway.pipeline.verdict import CheckOptions, judge
from gateway.sql_check import SqlPolicy
from gateway.synth import Literals, build, from_queries, from_question, plan_tables, run
from gateway.synth.judge import execution_match

PETS = ("CREATE TABLE Student (StuID INTEGER, LName VARCHAR, Fname VARCHAR, Age INTEGER, Sex VARCHAR, "
        "city_code VARCHAR); CREATE TABLE Has_Pet (StuID INTEGER, PetID INTEGER); "
        "CREATE TABLE Pets (PetID INTEGER, PetType VARCHAR, pet_age INTEGER, weight REAL)")
SHOP = ("CREATE TABLE customers (id INTEGER, name TEXT, country TEXT); "
        "CREATE TABLE orders (id INTEGER, customer_id INTEGER, total REAL, placed DATE)")
OPTIONS = CheckOptions(policy=SqlPolicy("read_only"))


def rows_of(image: bytes, sql: str) -> list[tuple[object, ...]]:
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(image)
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def literals_for(question: str, *queries: str, schema: str = SHOP) -> Literals:
    literals = Literals()
    from_question(question, literals)
    columns = frozenset(c.name.lower() for t in plan_tables(schema) for c in t.columns)
    from_queries(queries, literals, columns)
    return literals


def test_keys_are_unique_and_every_foreign_key_meets_its_parent() -> None:
    planned = {table.name: table for table in plan_tables(PETS)}
    assert planned["Student"].key == "stuid" and planned["Pets"].key == "petid" and planned["Has_Pet"].key is None
    assert set(planned["Has_Pet"].refs) == {("stuid", "student", "stuid"), ("petid", "pets", "petid")}
    for image in build(PETS, Literals(), seed=1).images:
        ids = [row[0] for row in rows_of(image, "SELECT StuID FROM Student")]
        assert len(ids) == len(set(ids)) and None not in ids
        orphans = rows_of(image, "SELECT count(*) FROM Has_Pet WHERE StuID NOT IN (SELECT StuID FROM Student) "
                                 "OR PetID NOT IN (SELECT PetID FROM Pets)")
        assert orphans == [(0,)]
    shop = {table.name: table for table in plan_tables(SHOP)}
    assert shop["orders"].refs == (("customer_id", "customers", "id"),)  # the x_id -> x.id pair


def test_the_question_s_and_the_candidates_values_are_in_the_rows() -> None:
    literals = literals_for("Orders from customers in 'France' above 250?",
                            "SELECT count(*) FROM orders JOIN customers ON customer_id = customers.id "
                            "WHERE country = 'France' AND total > 250", 'SELECT name FROM customers WHERE name = "Ann"')
    assert literals.bound["country"] == ["France"] and literals.bound["total"] == [250]
    assert literals.bound["name"] == ["Ann"]  # SQLite's double-quoted string, as the training data writes it
    first = build(SHOP, literals, seed=7).images[0]
    assert rows_of(first, "SELECT count(*) FROM customers WHERE country = 'France'")[0][0] >= 1
    totals = {row[0] for row in rows_of(first, "SELECT total FROM orders")}
    assert any(t > 250 for t in totals if t is not None) and any(t < 250 for t in totals if t is not None)


def test_the_second_instance_holds_nulls_and_the_third_edge_values() -> None:
    images = build(SHOP, literals_for("?", "SELECT * FROM customers WHERE country = 'France'"), seed=3).images
    assert len(images) == 3
    assert rows_of(images[0], "SELECT count(*) FROM customers WHERE country IS NULL") == [(0,)]
    assert rows_of(images[1], "SELECT count(*) FROM customers WHERE country IS NULL")[0][0] >= 1
    assert rows_of(images[1], "SELECT count(*) FROM customers WHERE id IS NULL") == [(0,)]  # keys stay whole
    edge = rows_of(images[2], "SELECT total FROM orders")
    assert any(total is not None and total <= 0 for (total,) in edge)
    assert rows_of(images[2], "SELECT count(*) FROM customers WHERE country IN ('', 'fRANCE')")[0][0] >= 1


def test_the_same_request_gets_the_same_rows_and_another_seed_other_rows() -> None:
    literals = literals_for("?", "SELECT name FROM customers WHERE country = 'France'")
    assert build(SHOP, literals, seed=11).images == build(SHOP, literals, seed=11).images
    assert build(SHOP, literals, seed=11).images != build(SHOP, literals, seed=12).images


def test_a_query_that_would_run_away_is_stopped_not_waited_for() -> None:
    images = build(SHOP, Literals(), seed=1).images
    explosive = ("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT count(*) FROM n")
    outcome = run(explosive, images)
    assert outcome.error is not None and "interrupted" in outcome.error
    assert run("SELECT count(*) FROM customers", images).error is None


def test_results_are_compared_as_sets_unless_the_query_orders() -> None:
    images = build(SHOP, Literals(), seed=5).images
    one, two = run("SELECT name FROM customers", images), run("SELECT name FROM customers ORDER BY name DESC", images)
    assert one.results != two.results
    assert run("SELECT name FROM customers ORDER BY name DESC", images, keep_order=False).results == one.results


def candidates(schema: str, *texts: str) -> list[Candidate]:
    return [Candidate(judge(text, "stop", schema=schema, dialect="sqlite", options=OPTIONS), "stop", text)
            for text in texts]


def test_queries_written_differently_that_return_the_same_rows_agree() -> None:
    question = "How many orders did customers from France place?"
    ballot = results_vote(candidates(
        SHOP,
        "SELECT count(*) FROM orders JOIN customers ON orders.customer_id = customers.id WHERE country = 'France'",
        "SELECT count(*) FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE country = 'France')",
        "SELECT count(T1.id) FROM orders AS T1 JOIN customers AS T2 ON T1.customer_id = T2.id "
        "WHERE T2.country = 'France'",
        "SELECT count(*) FROM orders",
        "SELECT count(*) FROM ordrs",  # fails the check: agrees with nothing
    ), schema=SHOP, question=question).ballot
    assert ballot.method == "results"
    assert [len(group.members) for group in ballot.groups] == [3, 1]
    assert ballot.agreement() == {"candidates": 5, "agreeing": 3, "ratio": 0.6}
    assert ballot.winner is not None and "JOIN customers ON orders" in ballot.winner.verdict.source_query


def test_an_answer_that_returns_nothing_anywhere_ranks_below_one_that_returns_rows() -> None:
    ballot = results_vote(candidates(
        SHOP, "SELECT name FROM customers WHERE country = 'Atlantis' AND country = 'France'",
        "SELECT name FROM customers WHERE country = 'France'"), schema=SHOP, question="Customers in France?").ballot
    assert ballot.winner is not None and "AND" not in ballot.winner.verdict.source_query


def test_the_judge_calls_equivalent_queries_equal_and_different_ones_different() -> None:
    gold = "SELECT T1.LName FROM Student AS T1 JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID JOIN Pets AS T3 " \
           "ON T3.PetID = T2.PetID WHERE T3.pet_age = 3 AND T3.PetType = 'cat'"
    question = "Find the last name of the student who has a cat that is age 3."
    same = "SELECT LName FROM Student WHERE StuID IN (SELECT StuID FROM Has_Pet WHERE PetID IN " \
           "(SELECT PetID FROM Pets WHERE PetType = 'cat' AND pet_age = 3))"
    assert execution_match(same, gold, schema=PETS, question=question) is True
    assert execution_match(same.replace("'cat'", "'dog'"), gold, schema=PETS, question=question) is False
    assert execution_match("SELECT LName FROM Student", gold, schema=PETS, question=question) is False
    assert execution_match("SELECT LName FROM Studnt", gold, schema=PETS, question=question) is False
    assert execution_match(None, gold, schema=PETS, question=question) is False


def test_the_judge_allows_another_column_order_and_sets_aside_a_reference_that_returns_nothing() -> None:
    question = "Maximum weight for each type of pet?"
    gold = "SELECT max(weight), PetType FROM Pets GROUP BY PetType"
    assert execution_match("SELECT PetType, max(weight) FROM Pets GROUP BY PetType", gold, schema=PETS,
                           question=question) is True
    assert execution_match("SELECT PetType, min(weight) FROM Pets GROUP BY PetType", gold, schema=PETS,
                           question=question) is False
    never = "SELECT LName FROM Student WHERE Age > 10 AND Age < 5"
    assert execution_match("SELECT LName FROM Student", never, schema=PETS, question="?") is None
