"""The schema grammar the grammar candidate strategy sends to vLLM (gateway/sql_check/grammar.py)."""

from __future__ import annotations

from gateway.sql_check.grammar import schema_grammar


def rule(grammar: str, name: str) -> str:
    return next(line for line in grammar.splitlines() if line.startswith(f"{name} ::= "))


def test_the_names_are_the_schema_s_own_bare_or_quoted() -> None:
    grammar = schema_grammar('CREATE TABLE tv (id int, "18_49_Rating_Share" real, [Air Date] text)')
    assert grammar is not None
    names = rule(grammar, "name")
    assert '"tv"' in names and '"id"' in names
    # Not bare identifiers: the model must quote them to be understood, so the grammar only offers them quoted.
    assert '"\\"18_49_Rating_Share\\""' in names and '"\\"Air Date\\""' in names
    assert '"18_49_Rating_Share"' not in names


def test_names_come_as_written_in_lower_and_upper_case_and_nothing_else_is_a_name() -> None:
    grammar = schema_grammar("CREATE TABLE Pets (PetID int, PetType text)")
    assert grammar is not None
    # Upper case too: gold SQL writes `AIRLINES` for a table the schema calls `airlines` (SQLite ignores case)
    assert rule(grammar, "name") == ('name ::= "PetID" | "petid" | "PETID" | "PetType" | "pettype" | "PETTYPE" | '
                                     '"Pets" | "pets" | "PETS"')
    # Prose can't get in through aliases: only T1-style table aliases are free words.
    assert rule(grammar, "alias") == "alias ::= [Tt] [0-9]{1,2}"
    assert rule(grammar, "start") == 'start ::= "SELECT" | "select" | "WITH" | "with"'


def test_a_schema_with_no_readable_table_gets_no_grammar() -> None:
    assert schema_grammar("this is not a schema") is None
    assert schema_grammar("") is None
