"""Built-in (question, schema) pairs for `sqlgate bench`: the kinds of questions analysts ask, short schemas
in the training data's style, the three examples of the deployment write-up first."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prompt:
    question: str
    schema: str


_SINGER = "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)"
_EMPLOYEE = "CREATE TABLE employee (Employee_ID int, Name text, Department text, Salary real)"
_DORMS = (
    "CREATE TABLE student (StuID int, Fname text, LName text) "
    "CREATE TABLE lives_in (stuid int, dormid int) "
    "CREATE TABLE dorm (dormid int, dorm_name text)"
)
_ORDERS = (
    "CREATE TABLE customers (customer_id INTEGER, name VARCHAR, country VARCHAR, signup_date DATE); "
    "CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, order_date DATE, total REAL, status VARCHAR)"
)
_HEAD = "CREATE TABLE head (head_id INTEGER, name VARCHAR, born_state VARCHAR, age INTEGER)"
_FLIGHTS = (
    "CREATE TABLE airports (code VARCHAR, city VARCHAR, country VARCHAR); "
    "CREATE TABLE flights (flight_no VARCHAR, origin VARCHAR, destination VARCHAR, distance INTEGER, "
    "departure DATETIME)"
)

BUILTIN_PROMPTS: tuple[Prompt, ...] = (
    Prompt("How many singers do we have?", _SINGER),
    Prompt("Find all employees in the Engineering department with a salary above 80000.", _EMPLOYEE),
    Prompt("List each student's name and the dorm they live in.", _DORMS),
    Prompt("What is the average salary in each department?", _EMPLOYEE),
    Prompt("Show the names of singers from France.", _SINGER),
    Prompt("How many heads of the departments are older than 56?", _HEAD),
    Prompt("List the name, born state and age of the heads of departments ordered by age.", _HEAD),
    Prompt("What is the total value of orders placed by customers from Germany?", _ORDERS),
    Prompt("Which 5 customers have spent the most, and how much did each spend?", _ORDERS),
    Prompt("How many orders are still pending?", _ORDERS),
    Prompt("Which city has the most departing flights?", _FLIGHTS),
    Prompt("What is the longest flight distance from London?", _FLIGHTS),
)
