"""Databases synthesized from a request's schema, and queries run on them: the gateway's vote by results and the
quality benchmark's execution match both read these (docs/eval.md, "Execution match")."""

from gateway.synth.execute import Outcome, run
from gateway.synth.instances import Instances, build, plan_tables
from gateway.synth.literals import Literals, from_queries, from_question

__all__ = ["Instances", "Literals", "Outcome", "build", "from_queries", "from_question", "plan_tables", "run"]
