# %% [markdown]
# # Asking a database questions through sqlgate
#
# A notebook in the percent format (VS Code, PyCharm, Jupytext): run it cell by cell, or as a script.
# It needs `OPENAI_BASE_URL` (the gateway's URL + `/v1`) and `OPENAI_API_KEY`, like any openai SDK program.
# The gateway turns each question into one checked, read-only SQL query; we run it on a small SQLite database.

# %%
from __future__ import annotations

import os
import sqlite3
import sys

from openai import OpenAI

client = OpenAI()
model = os.environ.get("SQLGATE_MODEL") or client.models.list().data[0].id
print(f"gateway: {client.base_url}  model: {model}")

# %% [markdown]
# ## The schema: CREATE TABLE statements, as the model was trained on them

# %%
SCHEMAS = {
    "singers": "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)",
    "dorms": (
        "CREATE TABLE student (StuID int, Fname text, LName text) "
        "CREATE TABLE lives_in (stuid int, dormid int) "
        "CREATE TABLE dorm (dormid int, dorm_name text)"
    ),
}

# %% [markdown]
# ## A toy database with those tables

# %%
db = sqlite3.connect(":memory:")
db.executescript(
    """
    CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text);
    INSERT INTO singer VALUES (1, 'Joe Sharp', 'Netherlands', 'You'),
        (2, 'Timbaland', 'United States', 'Dangerous'), (3, 'Justin Brown', 'France', 'Hey Oh'),
        (4, 'Rose White', 'France', 'Sun');
    CREATE TABLE student (StuID int, Fname text, LName text);
    CREATE TABLE lives_in (stuid int, dormid int);
    CREATE TABLE dorm (dormid int, dorm_name text);
    INSERT INTO student VALUES (1001, 'Linda', 'Smith'), (1002, 'Tracy', 'Kim');
    INSERT INTO dorm VALUES (100, 'Smith Hall'), (110, 'Bud Jones Hall');
    INSERT INTO lives_in VALUES (1001, 100), (1002, 110);
    """
)

# %% [markdown]
# ## Ask, look at the check, run the SQL


# %%
def ask(question: str, schema: str) -> str:
    """One question -> the SQL; stops the notebook when the gateway's check did not pass."""
    completion = client.completions.create(model=model, prompt=question, extra_body={"schema": schema})
    sql = completion.choices[0].text
    check = (completion.model_extra or {}).get("sql") or {}
    print(f"Q: {question}\nSQL: {sql}")
    print(f"check: valid={check.get('valid')} read_only={check.get('read_only')} "
          f"tables={check.get('tables')}")
    if not check.get("valid"):
        raise SystemExit(f"the gateway's check did not pass: {check.get('problems')}")
    return sql


def show(sql: str) -> list[tuple[object, ...]]:
    """Run the query and print the rows as a small table."""
    cursor = db.execute(sql)
    header = [column[0] for column in cursor.description]
    rows = cursor.fetchall()
    print(" | ".join(header))
    for row in rows:
        print(" | ".join(str(value) for value in row))
    return rows


# %%
count_sql = ask("How many singers do we have?", SCHEMAS["singers"])
singer_count = show(count_sql)

# %%
dorm_sql = ask("List each student's name and the dorm they live in.", SCHEMAS["dorms"])
dorm_rows = show(dorm_sql)

# %% [markdown]
# ## Sanity check: the answers agree with the data

# %%
if singer_count != [(4,)] or len(dorm_rows) != 2:
    sys.exit(f"unexpected results: {singer_count} {dorm_rows}")
print("all questions answered")
