"""Benchmark prompts: analysts' questions over realistic multi-table schemas (100-400 Qwen tokens each), with a
correct read-only answer per question so a fake upstream can reply with SQL that really passes the gateway's check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from clients.bench_prompts import Prompt


@dataclass(frozen=True)
class BenchPrompt:
    question: str
    schema: str
    answer: str  # a correct SQLite query for the question, used only by the fake upstream

    def as_client_prompt(self) -> Prompt:
        return Prompt(self.question, self.schema)


_SHOP = ";\n".join((
    "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, first_name VARCHAR, last_name VARCHAR, "
    "email VARCHAR, country VARCHAR, city VARCHAR, signup_date DATE, loyalty_tier VARCHAR)",
    "CREATE TABLE products (product_id INTEGER PRIMARY KEY, name VARCHAR, category VARCHAR, brand VARCHAR, "
    "unit_price REAL, stock_quantity INTEGER, discontinued INTEGER)",
    "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER, order_date DATE, "
    "status VARCHAR, shipping_country VARCHAR, total_amount REAL)",
    "CREATE TABLE order_items (order_item_id INTEGER PRIMARY KEY, order_id INTEGER, product_id INTEGER, "
    "quantity INTEGER, unit_price REAL, discount REAL)",
    "CREATE TABLE payments (payment_id INTEGER PRIMARY KEY, order_id INTEGER, paid_at DATETIME, "
    "method VARCHAR, amount REAL, currency VARCHAR)",
    "CREATE TABLE shipments (shipment_id INTEGER PRIMARY KEY, order_id INTEGER, carrier VARCHAR, "
    "shipped_at DATETIME, delivered_at DATETIME, tracking_number VARCHAR)",
    "CREATE TABLE reviews (review_id INTEGER PRIMARY KEY, product_id INTEGER, customer_id INTEGER, "
    "rating INTEGER, review_text VARCHAR, created_at DATE)",
))

_HR = ";\n".join((
    "CREATE TABLE departments (department_id INTEGER PRIMARY KEY, department_name VARCHAR, location VARCHAR, "
    "budget REAL, manager_id INTEGER)",
    "CREATE TABLE employees (employee_id INTEGER PRIMARY KEY, first_name VARCHAR, last_name VARCHAR, "
    "hire_date DATE, job_title VARCHAR, salary REAL, department_id INTEGER, manager_id INTEGER)",
    "CREATE TABLE salary_history (employee_id INTEGER, effective_date DATE, old_salary REAL, "
    "new_salary REAL, reason VARCHAR)",
    "CREATE TABLE jobs (job_id INTEGER PRIMARY KEY, job_title VARCHAR, min_salary REAL, max_salary REAL)",
    "CREATE TABLE locations (location_id INTEGER PRIMARY KEY, street_address VARCHAR, postal_code VARCHAR, "
    "city VARCHAR, state_province VARCHAR, country_id VARCHAR)",
    "CREATE TABLE projects (project_id INTEGER PRIMARY KEY, project_name VARCHAR, department_id INTEGER, "
    "start_date DATE, end_date DATE, budget REAL)",
    "CREATE TABLE project_assignments (project_id INTEGER, employee_id INTEGER, role VARCHAR, "
    "hours_per_week REAL)",
))

_FLIGHTS = ";\n".join((
    "CREATE TABLE airports (airport_code VARCHAR PRIMARY KEY, airport_name VARCHAR, city VARCHAR, "
    "country VARCHAR, latitude REAL, longitude REAL)",
    "CREATE TABLE airlines (airline_id INTEGER PRIMARY KEY, airline_name VARCHAR, iata_code VARCHAR, "
    "country VARCHAR, active INTEGER)",
    "CREATE TABLE flights (flight_id INTEGER PRIMARY KEY, airline_id INTEGER, flight_number VARCHAR, "
    "origin_code VARCHAR, destination_code VARCHAR, scheduled_departure DATETIME, actual_departure DATETIME, "
    "distance_km INTEGER, status VARCHAR)",
    "CREATE TABLE bookings (booking_id INTEGER PRIMARY KEY, flight_id INTEGER, passenger_name VARCHAR, "
    "seat_class VARCHAR, fare REAL, booked_at DATETIME)",
    "CREATE TABLE aircraft (aircraft_id INTEGER PRIMARY KEY, airline_id INTEGER, model VARCHAR, "
    "seats INTEGER, first_flight_year INTEGER)",
))

_HOSPITAL = ";\n".join((
    "CREATE TABLE patients (patient_id INTEGER PRIMARY KEY, full_name VARCHAR, birth_date DATE, sex VARCHAR, "
    "blood_type VARCHAR, insurance_provider VARCHAR)",
    "CREATE TABLE physicians (physician_id INTEGER PRIMARY KEY, full_name VARCHAR, specialty VARCHAR, "
    "years_experience INTEGER)",
    "CREATE TABLE admissions (admission_id INTEGER PRIMARY KEY, patient_id INTEGER, physician_id INTEGER, "
    "admitted_on DATE, discharged_on DATE, ward VARCHAR, diagnosis VARCHAR, total_cost REAL)",
    "CREATE TABLE prescriptions (prescription_id INTEGER PRIMARY KEY, admission_id INTEGER, "
    "drug_name VARCHAR, dose_mg REAL, frequency VARCHAR, start_date DATE, end_date DATE)",
    "CREATE TABLE lab_results (result_id INTEGER PRIMARY KEY, patient_id INTEGER, test_name VARCHAR, "
    "value REAL, unit VARCHAR, taken_at DATETIME, abnormal INTEGER)",
))

_SCHOOL = ";\n".join((
    "CREATE TABLE students (student_id INTEGER PRIMARY KEY, first_name VARCHAR, last_name VARCHAR, "
    "enrollment_year INTEGER, major VARCHAR, gpa REAL)",
    "CREATE TABLE courses (course_id INTEGER PRIMARY KEY, title VARCHAR, department VARCHAR, "
    "credits INTEGER, instructor VARCHAR)",
    "CREATE TABLE enrollments (student_id INTEGER, course_id INTEGER, semester VARCHAR, grade VARCHAR, "
    "score REAL)",
    "CREATE TABLE instructors (instructor_id INTEGER PRIMARY KEY, full_name VARCHAR, department VARCHAR, "
    "hire_year INTEGER, tenure INTEGER, salary REAL)",
    "CREATE TABLE classrooms (room_id INTEGER PRIMARY KEY, building VARCHAR, room_number VARCHAR, "
    "capacity INTEGER)",
    "CREATE TABLE sections (section_id INTEGER PRIMARY KEY, course_id INTEGER, semester VARCHAR, "
    "year INTEGER, room_id INTEGER, instructor_id INTEGER, time_slot VARCHAR)",
))

_MUSIC = ";\n".join((
    "CREATE TABLE singer (Singer_ID INTEGER, Name VARCHAR, Country VARCHAR, Song_Name VARCHAR, "
    "Song_release_year VARCHAR, Age INTEGER, Is_male VARCHAR)",
    "CREATE TABLE concert (concert_ID INTEGER, concert_Name VARCHAR, Theme VARCHAR, Stadium_ID VARCHAR, "
    "Year VARCHAR)",
    "CREATE TABLE stadium (Stadium_ID INTEGER, Location VARCHAR, Name VARCHAR, Capacity INTEGER, "
    "Highest INTEGER, Lowest INTEGER, Average INTEGER)",
    "CREATE TABLE singer_in_concert (concert_ID INTEGER, Singer_ID VARCHAR)",
    "CREATE TABLE album (Album_ID INTEGER, Title VARCHAR, Singer_ID INTEGER, Release_year INTEGER, "
    "Label VARCHAR, Sales INTEGER)",
    "CREATE TABLE tour (Tour_ID INTEGER, Singer_ID INTEGER, Tour_Name VARCHAR, Start_date DATE, "
    "End_date DATE, Gross REAL)",
))

_SUPPORT = ";\n".join((
    "CREATE TABLE accounts (account_id INTEGER PRIMARY KEY, company_name VARCHAR, industry VARCHAR, "
    "region VARCHAR, plan VARCHAR, monthly_fee REAL, created_at DATE)",
    "CREATE TABLE agents (agent_id INTEGER PRIMARY KEY, full_name VARCHAR, team VARCHAR, hired_on DATE)",
    "CREATE TABLE tickets (ticket_id INTEGER PRIMARY KEY, account_id INTEGER, agent_id INTEGER, "
    "opened_at DATETIME, closed_at DATETIME, priority VARCHAR, channel VARCHAR, category VARCHAR, "
    "satisfaction_score INTEGER)",
    "CREATE TABLE ticket_messages (message_id INTEGER PRIMARY KEY, ticket_id INTEGER, author_type VARCHAR, "
    "sent_at DATETIME, body VARCHAR)",
    "CREATE TABLE sla_policies (plan VARCHAR, priority VARCHAR, first_response_hours INTEGER, "
    "resolution_hours INTEGER)",
))

_LIBRARY = ";\n".join((
    "CREATE TABLE books (book_id INTEGER PRIMARY KEY, title VARCHAR, author VARCHAR, genre VARCHAR, "
    "published_year INTEGER, isbn VARCHAR, copies INTEGER)",
    "CREATE TABLE members (member_id INTEGER PRIMARY KEY, full_name VARCHAR, joined_on DATE, "
    "membership_type VARCHAR, city VARCHAR)",
    "CREATE TABLE loans (loan_id INTEGER PRIMARY KEY, book_id INTEGER, member_id INTEGER, loaned_on DATE, "
    "due_on DATE, returned_on DATE, late_fee REAL)",
    "CREATE TABLE reservations (reservation_id INTEGER PRIMARY KEY, book_id INTEGER, member_id INTEGER, "
    "reserved_on DATE, status VARCHAR)",
    "CREATE TABLE branches (branch_id INTEGER PRIMARY KEY, branch_name VARCHAR, city VARCHAR, "
    "opened_year INTEGER)",
    "CREATE TABLE book_copies (copy_id INTEGER PRIMARY KEY, book_id INTEGER, branch_id INTEGER, "
    "condition VARCHAR, acquired_on DATE)",
))

BENCH_PROMPTS: tuple[BenchPrompt, ...] = (
    BenchPrompt("What is the total revenue from delivered orders shipped to Germany?", _SHOP,
                "SELECT SUM(total_amount) FROM orders WHERE status = 'delivered' AND shipping_country = 'Germany'"),
    BenchPrompt("List the 5 customers who spent the most, with their total spend.", _SHOP,
                "SELECT c.first_name, c.last_name, SUM(o.total_amount) AS spend FROM customers AS c JOIN orders AS o "
                "ON c.customer_id = o.customer_id GROUP BY c.customer_id ORDER BY spend DESC LIMIT 5"),
    BenchPrompt("Which average salary does each department have, highest first?", _HR,
                "SELECT d.department_name, AVG(e.salary) FROM employees AS e JOIN departments AS d "
                "ON e.department_id = d.department_id GROUP BY d.department_name ORDER BY AVG(e.salary) DESC"),
    BenchPrompt("How many employees were hired after 2020?", _HR,
                "SELECT COUNT(*) FROM employees WHERE hire_date > '2020-12-31'"),
    BenchPrompt("Which city has the most departing flights?", _FLIGHTS,
                "SELECT a.city, COUNT(*) FROM flights AS f JOIN airports AS a ON f.origin_code = a.airport_code "
                "GROUP BY a.city ORDER BY COUNT(*) DESC LIMIT 1"),
    BenchPrompt("What is the average fare of business class bookings?", _FLIGHTS,
                "SELECT AVG(fare) FROM bookings WHERE seat_class = 'business'"),
    BenchPrompt("How many admissions did each physician specialty have?", _HOSPITAL,
                "SELECT p.specialty, COUNT(*) FROM admissions AS a JOIN physicians AS p "
                "ON a.physician_id = p.physician_id GROUP BY p.specialty"),
    BenchPrompt("What is the average cost of admissions to the cardiology ward?", _HOSPITAL,
                "SELECT AVG(total_cost) FROM admissions WHERE ward = 'cardiology'"),
    BenchPrompt("List the names of students with a GPA above 3.5 majoring in physics.", _SCHOOL,
                "SELECT first_name, last_name FROM students WHERE gpa > 3.5 AND major = 'physics'"),
    BenchPrompt("What is the average score in each course?", _SCHOOL,
                "SELECT c.title, AVG(e.score) FROM enrollments AS e JOIN courses AS c ON e.course_id = c.course_id "
                "GROUP BY c.title"),
    BenchPrompt("How many singers do we have?", _MUSIC, "SELECT COUNT(*) FROM singer"),
    BenchPrompt("Show the name and capacity of the stadium with the highest average attendance.", _MUSIC,
                "SELECT Name, Capacity FROM stadium ORDER BY Average DESC LIMIT 1"),
    BenchPrompt("How many high priority tickets did each team close?", _SUPPORT,
                "SELECT ag.team, COUNT(*) FROM tickets AS t JOIN agents AS ag ON t.agent_id = ag.agent_id "
                "WHERE t.priority = 'high' AND t.closed_at IS NOT NULL GROUP BY ag.team"),
    BenchPrompt("What is the average satisfaction score per channel?", _SUPPORT,
                "SELECT channel, AVG(satisfaction_score) FROM tickets GROUP BY channel"),
    BenchPrompt("Which books were never returned?", _LIBRARY,
                "SELECT b.title FROM books AS b JOIN loans AS l ON b.book_id = l.book_id WHERE l.returned_on IS NULL"),
    BenchPrompt("How much late fee did members from Boston pay in total?", _LIBRARY,
                "SELECT SUM(l.late_fee) FROM loans AS l JOIN members AS m ON l.member_id = m.member_id "
                "WHERE m.city = 'Boston'"),
)

CLIENT_PROMPTS: tuple[Prompt, ...] = tuple(prompt.as_client_prompt() for prompt in BENCH_PROMPTS)

# The question inside a rendered training prompt, without the "(request N)" suffix the bench client adds.
_QUESTION = re.compile(r"Write a SQL query to answer: (.*?)(?: \(request \d+\))?<\|im_end\|>", re.DOTALL)
_ANSWERS = {prompt.question: prompt.answer for prompt in BENCH_PROMPTS}
FALLBACK_ANSWER = "SELECT 1"


def answer_for_prompt(rendered: str) -> str:
    """The reference SQL for a rendered training prompt (what a perfect model would say)."""
    match = _QUESTION.search(rendered)
    return _ANSWERS.get(match.group(1), FALLBACK_ANSWER) if match else FALLBACK_ANSWER
