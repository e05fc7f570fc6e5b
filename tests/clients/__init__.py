"""Tests of clients/: the sqlgate CLI, eval scoring, bench, and the SDK examples."""
