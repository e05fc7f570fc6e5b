"""Warehouse-sized schemas: the whole DDL is accepted, the model is shown only the tables the question needs (whole
tables, within its prompt budget), the answer says which, grounding still sees everything, and an analyst can pin
a table the choice missed."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.app import create_app
from gateway.limits import load_tokenizer
from gateway.prompt import render_prompt
from gateway.scope import SchemaScoper
from gateway.scope.words import name_words, question_words
from tests import faults
from tests.conftest import asgi_client, make_settings
from tests.servers import fake_upstream

OWN = ("CREATE TABLE Student (StuID INTEGER, LName VARCHAR, Fname VARCHAR, Age INTEGER, city_code VARCHAR); "
       "CREATE TABLE Has_Pet (StuID INTEGER, PetID INTEGER); "
       "CREATE TABLE Pets (PetID INTEGER, PetType VARCHAR, pet_age INTEGER, weight INTEGER)")
LAYERS = ("stg", "dim", "fact", "hist", "ods", "tmp", "raw", "mart")
SUBJECTS = ("invoice", "shipment", "warehouse", "supplier", "payment", "ledger", "campaign", "ticket", "region",
            "budget", "contract", "device", "sensor", "reading", "session", "account", "branch", "route", "vessel",
            "cargo", "claim", "policy", "premium", "tariff", "meter")


def warehouse(tables: int = 200) -> str:
    """The pets database hidden among `tables` others of a warehouse's kind."""
    statements = [f"CREATE TABLE {layer}_{subject} (id INTEGER, {subject}_code VARCHAR, amount REAL, name VARCHAR, "
                  f"created DATE)" for layer in LAYERS for subject in SUBJECTS][: tables - 3]
    middle = len(statements) // 2
    return "; ".join([*statements[:middle], OWN, *statements[middle:]])


def names_in(prompt: str) -> set[str]:
    return {word.split(" (")[0] for word in prompt.split("CREATE TABLE ")[1:]}


async def ask(body: dict[str, Any], answer: str = "SELECT count(*) FROM Pets WHERE weight > 10",
              **settings: Any) -> tuple[Any, list[bytes]]:
    with fake_upstream(faults.ok(answer)) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, cache_enabled=False, sql_candidates=0,
                                       **settings))
        async with asgi_client(app) as client:
            response = await client.post("/v1/sql", json=body)
        return response, list(upstream.requests)


async def test_a_whole_warehouse_is_accepted_and_the_model_sees_the_tables_the_question_needs() -> None:
    schema = warehouse(200)
    assert len(schema) > 20_000  # 10 times the cap the gateway had
    response, sent = await ask({"question": "How many pets weigh more than 10?", "schema": schema})
    assert response.status_code == 200, response.text
    scope = response.json()["check"]["schema_scope"]
    assert scope["tables_total"] == 200
    assert "Pets" in scope["tables_sent"] and len(scope["tables_sent"]) < 20
    prompt = orjson.loads(sent[0])["prompt"]
    assert names_in(prompt) == set(scope["tables_sent"])  # whole tables, exactly those named
    tokenizer = load_tokenizer(None)
    assert len(tokenizer.encode(prompt, add_special_tokens=False).ids) <= 512


async def test_tables_joined_through_a_bridge_are_sent_together() -> None:
    response, _ = await ask({"question": "What are the last names of students who have a dog?",
                                "schema": warehouse(200)},
                               answer="SELECT T1.LName FROM Student AS T1 JOIN Has_Pet AS T2 ON T1.StuID = T2.StuID")
    assert response.status_code == 200, response.text
    assert {"Student", "Has_Pet", "Pets"} <= set(response.json()["check"]["schema_scope"]["tables_sent"])


async def test_tables_that_share_only_common_words_with_the_question_are_not_sent() -> None:
    # `name` and `amount` stand in every warehouse table: a weak match each. Filling the budget with them hid the
    # pets among look-alikes, and the real model answered worse (reports/gpu_lease2/schema_scale.json).
    response, _ = await ask({"question": "What is the name and amount of the pets that weigh more than 10?",
                             "schema": warehouse(200)})
    assert response.status_code == 200, response.text
    sent = response.json()["check"]["schema_scope"]["tables_sent"]
    assert "Pets" in sent and len(sent) <= 4, sent


async def test_grounding_still_sees_every_table_the_schema_defines() -> None:
    # The model answers with a table it was not shown: it exists, so the answer stands.
    response, sent = await ask({"question": "How many pets weigh more than 10?", "schema": warehouse(200)},
                               answer="SELECT count(*) FROM stg_invoice")
    assert response.status_code == 200, response.text
    assert "stg_invoice" not in response.json()["check"]["schema_scope"]["tables_sent"]
    assert "stg_invoice" not in orjson.loads(sent[0])["prompt"]


async def test_a_pinned_table_is_always_sent_and_an_unknown_one_is_refused() -> None:
    body = {"question": "How many pets weigh more than 10?", "schema": warehouse(200), "tables": ["mart_ticket"]}
    response, sent = await ask(body)
    assert response.status_code == 200, response.text
    assert "mart_ticket" in response.json()["check"]["schema_scope"]["tables_sent"]
    assert "CREATE TABLE mart_ticket" in orjson.loads(sent[0])["prompt"]
    unknown, sent = await ask({**body, "tables": ["Pets", "no_such_table"]})
    assert unknown.status_code == 400 and sent == []
    error = unknown.json()["error"]
    assert (error["code"], error["param"]) == ("unknown_table", "tables") and "no_such_table" in error["message"]


async def test_pinned_tables_that_cannot_fit_are_a_typed_422() -> None:
    wide = "; ".join(f"CREATE TABLE wide_{n} (" + ", ".join(f"column_{n}_{c} VARCHAR" for c in range(40)) + ")"
                     for n in range(4))
    response, sent = await ask({"question": "How many rows?", "schema": wide,
                                "tables": ["wide_0", "wide_1", "wide_2", "wide_3"]})
    assert response.status_code == 422 and sent == []
    assert (response.json()["error"]["code"], response.json()["error"]["param"]) == ("schema_too_large", "tables")


async def test_a_schema_that_fits_is_sent_as_written_comments_and_all() -> None:
    schema = "-- the pets database\n" + OWN.replace("; ", ";\n")
    response, sent = await ask({"question": "How many pets weigh more than 10?", "schema": schema})
    assert response.status_code == 200
    assert response.json()["check"]["schema_scope"] == {"tables_sent": ["Student", "Has_Pet", "Pets"],
                                                        "tables_total": 3}
    assert schema in orjson.loads(sent[0])["prompt"]


async def test_the_cap_is_a_setting_with_an_upper_bound() -> None:
    response, _ = await ask({"question": "How many pets?", "schema": OWN + " " * 2000}, max_schema_chars=2000)
    assert response.status_code == 422 and response.json()["error"]["code"] == "schema_too_long"
    with pytest.raises(ValueError, match="less than or equal to 10000000"):
        make_settings(max_schema_chars=10_000_001)


def test_the_choice_is_the_same_for_the_same_request() -> None:
    scoper = SchemaScoper(load_tokenizer(None), 512)
    schema = warehouse(200)
    first = scoper.scope("Which students own a cat?", schema, None, render_prompt)
    again = SchemaScoper(load_tokenizer(None), 512).scope("Which students own a cat?", schema, None, render_prompt)
    assert first == again and {"Student", "Has_Pet", "Pets"} <= set(first.tables_sent)


def test_schema_names_and_questions_are_compared_word_by_word() -> None:
    assert name_words("PetType") == {"pet", "type"}
    assert name_words("home_city_id") == {"home", "city", "id"}
    assert name_words("Highschooler") == {"highschooler"}
    words = question_words("How many high schoolers visited the museums?")
    assert {"high", "schooler", "highschooler", "visited", "museum"} <= words  # stems, and neighbours joined
    assert "how" not in words and "many" not in words


# What a look-alike costs: the real 0.5B model's execution match fell 7.9 / 8.6 points at 50 / 200 tables when the
# floor alone chose (reports/gpu_lease3/schema_scale_floor.json). The tests below pin what the choice now leaves out.
FRIENDS = ("CREATE TABLE Highschooler (ID INTEGER, name VARCHAR, grade INTEGER); "
           "CREATE TABLE Friend (student_id INTEGER, friend_id INTEGER)")


def scope_of(question: str, schema: str) -> list[str]:
    return list(SchemaScoper(load_tokenizer(None), 512).scope(question, schema, None, render_prompt).tables_sent)


def with_copies(statement: str, layers: tuple[str, ...] = LAYERS) -> list[str]:
    """A table and the copies a warehouse's layers make of it (`stg_Student`, ...)."""
    head = statement.split(" (")[0].removeprefix("CREATE TABLE ")
    return [statement, *(statement.replace(f"CREATE TABLE {head} (", f"CREATE TABLE {layer}_{head} (")
                         for layer in layers)]


def test_a_warehouse_layers_copies_of_a_table_are_not_sent_beside_it() -> None:
    student = OWN.split("; ")[0]
    schema = "; ".join([*with_copies(student), *OWN.split("; ")[1:], warehouse(150)])
    sent = scope_of("What are the last names and ages of the students?", schema)
    assert "Student" in sent, sent
    assert not [name for name in sent if name.endswith("_Student")], sent  # the plain name, not its copies


def test_a_table_that_adds_nothing_the_chosen_ones_offer_is_not_sent() -> None:
    # `players` matches only through `name` and `age`, which Student already offers.
    players = "CREATE TABLE players (player_id INTEGER, first_name VARCHAR, last_name VARCHAR, age INTEGER)"
    sent = scope_of("What are the names and ages of the students?", "; ".join([OWN, players, warehouse(60)]))
    assert "Student" in sent and "players" not in sent, sent


def test_have_and_has_do_not_choose_a_table_named_has_something() -> None:
    allergy = "CREATE TABLE Has_Allergy (StuID INTEGER, Allergy VARCHAR)"
    sent = scope_of("How many cities have a student older than 20?", "; ".join([OWN, allergy, warehouse(60)]))
    assert "Student" in sent and "Has_Allergy" not in sent, sent


def test_copies_of_a_table_do_not_make_its_words_count_less() -> None:
    # Eight copies of Student and of Highschooler: their words are in nine tables each, yet one table's worth.
    statements = [*with_copies(OWN.split("; ")[0]), *OWN.split("; ")[1:], *with_copies(FRIENDS.split("; ")[0]),
                  warehouse(120)]
    sent = scope_of("How many dog pets are raised by female students?", "; ".join(statements))
    assert {"Student", "Pets", "Has_Pet"} <= set(sent), sent


def test_a_synonym_counts_less_than_the_word_itself() -> None:
    # `students` names Student; Highschooler is the synonym list's guess, a hint rather than the word.
    from gateway.scope.choose import offers, scores
    from gateway.scope.tables import scope_tables

    tables = scope_tables("; ".join([OWN, FRIENDS]))
    question = "How many students are there?"
    relevance = dict(zip((t.name for t in tables), scores(question, tables, offers(question, tables)), strict=True))
    assert relevance["Student"] > relevance["Highschooler"] > 0, relevance


def test_a_key_column_joins_the_table_it_names() -> None:
    from gateway.scope.tables import scope_tables

    schema = ("CREATE TABLE course (Course_ID INTEGER, Staring_Date VARCHAR, Course VARCHAR); "
              "CREATE TABLE teacher (Teacher_ID INTEGER, Name VARCHAR, Age VARCHAR, Hometown VARCHAR); "
              "CREATE TABLE course_arrange (Course_ID INTEGER, Teacher_ID INTEGER, Grade INTEGER)")
    joins = {table.name: table.joins for table in scope_tables(schema)}
    assert joins["course_arrange"] == {"course", "teacher"}  # `course_id` joins course, not course_arrange itself
    sent = scope_of("What is the name of each teacher and what course they teach?", "; ".join([schema,
                                                                                             warehouse(80)]))
    assert {"course", "teacher", "course_arrange"} <= set(sent), sent


def test_a_name_the_question_meets_in_one_word_of_several_weighs_less_than_one_it_meets_wholly() -> None:
    # `Ref_Template_Types` shares only `type` with "each type of pet", `AREA_CODE_STATE` only `code` with "template
    # type code": one word of a three-word name. Weighed like a whole-name match, they were chosen beside the right
    # tables, and tables of another database cost the real model more than anything else the choice did
    # (reports/gpu_lease3/schema_scale_adds_run2_rows.jsonl: -4.8 points at 50 tables on the rows that had them).
    from gateway.scope.choose import offers
    from gateway.scope.tables import scope_tables

    tables = scope_tables("CREATE TABLE Ref_Template_Types (Template_Type_Code VARCHAR); "
                          "CREATE TABLE Types (Template_Type_Code VARCHAR); CREATE TABLE Pets (PetID INTEGER)")
    part, whole, _ = (sum(value for key, value in offer.weights.items() if key[0] == "name")
                      for offer in offers("What is the average weight for each type of pet?", tables))
    assert 0 < part < whole, (part, whole)


def test_a_table_the_question_names_wholly_is_still_sent_whatever_its_name_length() -> None:
    templates = ("CREATE TABLE Ref_Template_Types (Template_Type_Code VARCHAR, Template_Type_Description VARCHAR); "
                 "CREATE TABLE Templates (Template_ID INTEGER, Version_Number INTEGER, Template_Type_Code VARCHAR)")
    sent = scope_of("What are the descriptions of all template types?", "; ".join([OWN, templates,
                                                                                    warehouse(60)]))
    assert "Ref_Template_Types" in sent, sent
