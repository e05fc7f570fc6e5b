"""extract_sql cuts the model's text only where what follows is not SQL (regression: `SELECT id,\\n  note, title\\n
FROM memo` was cut to `SELECT id,` because a line starting with "note" looked like prose)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.sql_check import extract_sql

# Column and table names that are also words a sentence starts with.
ENGLISH_NAMES = ["note", "this", "these", "the", "here", "it", "i", "we", "you", "that", "please", "explanation",
                 "title", "name", "assuming", "Note", "This", "The", "Here", "It", "That"]
PROSE = ["This query returns the names.", "Note: the table has no index.", "Explanation: it counts rows.",
         "Here is why it works.", "The result lists every user."]


def test_a_select_list_that_goes_on_after_a_comma_is_kept_whole() -> None:
    assert extract_sql("SELECT id,\n  note, title\nFROM memo") == "SELECT id,\n  note, title\nFROM memo"


def test_prose_after_a_complete_statement_is_cut() -> None:
    assert extract_sql("SELECT id\nFROM memo\nThis query returns every id.") == "SELECT id\nFROM memo"
    assert extract_sql("SELECT id FROM memo;\n\nNote that ids are unique.") == "SELECT id FROM memo"


@st.composite
def multiline_select(draw: st.DrawFn) -> str:
    columns = draw(st.lists(st.sampled_from(ENGLISH_NAMES), min_size=1, max_size=5))
    table = draw(st.sampled_from(ENGLISH_NAMES))
    layout = draw(st.sampled_from(["leading", "trailing"]))
    if layout == "trailing":  # each column on its own line, the comma at the end of the line before
        select = "SELECT\n" + ",\n".join(f"  {column}" for column in columns)
    else:  # comma-first style
        select = "SELECT " + columns[0] + "".join(f"\n     , {column}" for column in columns[1:])
    sql = f"{select}\nFROM {table}"
    if draw(st.booleans()):
        sql += f"\nWHERE\n  {draw(st.sampled_from(ENGLISH_NAMES))} = 'x'"
    if draw(st.booleans()):
        sql += f"\nORDER BY\n  {columns[0]}"
    return sql


@given(multiline_select(), st.sampled_from(["\n", "\n\n", ";\n", ";\n\n"]),
       st.one_of(st.just(""), st.sampled_from(PROSE)), st.booleans())
def test_multiline_sql_named_like_english_survives_extraction(sql: str, gap: str, prose: str, fenced: bool) -> None:
    text = sql + (gap + prose if prose else "")
    if fenced:
        text = f"Sure:\n```sql\n{sql}\n```\n{prose}"
    assert extract_sql(text) == sql
