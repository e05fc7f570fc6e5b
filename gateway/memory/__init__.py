"""Verified-query memory: answers the team vouched for (a 👍, a correction), found again by schema fingerprint and
question shape, re-bound to the new question's values and checked again in full before they are used; the answer
log that lets feedback find what it rates; the feedback desk. docs/feedback.md says how it is used.

Nothing is imported here: the pipeline reaches the memory through its own protocol (gateway/pipeline/kept.py), and
importing this package must not import the pipeline."""
