"""`make quality` with the verified-query memory (`--memory-seed half`): the gateway's store is seeded with the gold
answers of every other row as verified pairs; then every row is asked as usual, and each seeded row once more with
its values swapped (another name, another number, in the question and in the gold SQL alike). The report's
`memory` section says which answers came from memory and how they execute against the gold query (gateway/synth's
execution match, test-suite style), for the seeded rows, their variants and the other half.

The variants are made here by plain text substitution, independently of the gateway's own re-binding
(gateway/memory/rebind.py), so that a re-binding mistake shows up as an execution mismatch."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any

from gateway.memory.fingerprint import schema_fingerprint
from gateway.memory.question import question_shape
from gateway.store import open_store
from gateway.store.records import VerifiedPair, utc_now
from gateway.synth.judge import execution_match

SEED_KEY_NAME = "quality-seed"
# Swapped-in names: capitalised (so the question still reads them as values), unlikely to be in any schema's data.
NEW_NAMES = ("Avalon", "Brightwater", "Cobalt Ridge", "Dunmore", "Elmstead", "Fairhaven", "Glenrock", "Harrowgate")
_QUOTED_IN_QUESTION = re.compile(r"""'([^'\n]{1,60})'|"([^"\n]{1,60})\"""")
_NUMBER = re.compile(r"(?<![\w.])\d{1,9}(?:\.\d{1,4})?(?!\w|\.\d)")
_CAPITALISED = re.compile(r"(?<=\s)[A-Z][A-Za-z]{2,30}")


def seeded_half(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every other row, by position: the half whose gold answers seed the memory."""
    return list(rows[::2])


def seed_store(database_url: str, rows: Sequence[dict[str, Any]]) -> int:
    """Write the rows' gold answers as verified pairs (what a 👍 on a right answer would have made)."""

    async def seed() -> int:
        store = open_store(database_url)
        await store.start()
        try:
            for row in rows:
                await store.add_pair(VerifiedPair(
                    id=f"vp_seed_{row['index']}", fingerprint=schema_fingerprint(row["context"]),
                    question_key=question_shape(row["question"]).key, question=row["question"],
                    schema=row["context"], source_query=row["answer"], origin="rating", answer_id=None,
                    feedback_id=None, verified_by=SEED_KEY_NAME, verified_at=utc_now()))
        finally:
            await store.aclose()
        return len(rows)

    return asyncio.run(seed())


def _swapped_number(text: str) -> str:
    return str(int(text) + 7) if "." not in text else f"{float(text) + 1.5:g}"


def value_swapped(row: dict[str, Any], salt: int = 0) -> dict[str, Any] | None:
    """The row with each value that both its question and its gold SQL spell the same way replaced by another
    (a quoted or capitalised word by a new name, a number by another number); None when it has none."""
    question, answer = str(row["question"]), str(row["answer"])
    found: list[tuple[str, bool]] = []
    for match in _QUOTED_IN_QUESTION.finditer(question):
        found.append((next(group for group in match.groups() if group), False))
    found += [(match.group(0), True) for match in _NUMBER.finditer(question)]
    found += [(match.group(0), False) for match in _CAPITALISED.finditer(question)]
    swaps: dict[str, str] = {}
    names = iter(NEW_NAMES[salt % len(NEW_NAMES):] + NEW_NAMES[:salt % len(NEW_NAMES)])
    for value, number in found:
        if value in swaps:
            continue
        if number:
            in_sql = re.search(r"(?<![\w.])" + re.escape(value) + r"(?![\w.])", answer)
        else:
            in_sql = re.search("'" + re.escape(value) + "'|\"" + re.escape(value) + "\"", answer)
        if in_sql:
            swaps[value] = _swapped_number(value) if number else next(names, value + "x")
    if not swaps:
        return None
    for old, new in swaps.items():
        if old.replace(".", "").isdigit():
            question = re.sub(r"(?<![\w.])" + re.escape(old) + r"(?!\w|\.\d)", new, question)
            answer = re.sub(r"(?<![\w.])" + re.escape(old) + r"(?![\w.])", new, answer)
        else:
            question = question.replace(old, new)
            answer = answer.replace(f"'{old}'", f"'{new}'").replace(f'"{old}"', f'"{new}"')
    return {**row, "question": question, "answer": answer, "variant_of": row["index"], "swapped": swaps}


AskGateway = Callable[[dict[str, Any]], dict[str, Any]]


def judged(row: dict[str, Any], gateway: dict[str, Any]) -> dict[str, Any]:
    """A row with what the gateway answered and how that executes against the gold query."""
    match = execution_match(gateway.get("gateway_sql"), row["answer"], schema=row["context"],
                            question=row["question"]) if gateway.get("gateway_status") == 200 else False
    return {**row, **gateway, "execution_match": match}


def _group(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from_memory = [row for row in rows if row.get("gateway_source") == "verified"]
    decidable = [row for row in from_memory if row.get("execution_match") is not None]
    all_decidable = [row for row in rows if row.get("execution_match") is not None]
    return {
        "rows": len(rows),
        "answered_from_memory": len(from_memory),
        "execution_match_of_memory_answers": (round(sum(bool(r["execution_match"]) for r in decidable)
                                              / len(decidable), 4) if decidable else None),
        "memory_answers_undecidable": len(from_memory) - len(decidable),
        "execution_match_all": (round(sum(bool(r["execution_match"]) for r in all_decidable) / len(all_decidable), 4)
                                if all_decidable else None),
        "sources": {source: sum(row.get("gateway_source") == source for row in rows)
                    for source in ("generated", "cache", "verified", None)},
    }


def memory_summary(rows: Sequence[dict[str, Any]], seeded: set[int], variants: Sequence[dict[str, Any]]
                   ) -> dict[str, Any]:
    """The report's `memory` section from the judged main rows and the judged variants."""
    return {
        "seed": "half: the gold answers of every other row, as verified pairs",
        "seeded": _group([row for row in rows if row["index"] in seeded]),
        "value_swapped_variants": {**_group(variants),
                                   "seeded_rows_without_a_swappable_value": len(seeded) - len(variants)},
        "unseeded": _group([row for row in rows if row["index"] not in seeded]),
        "note": "a seeded gold answer that fails the gateway's check is never served from memory (it is checked "
                "again like any answer), so `answered_from_memory` may be below `rows`",
    }
