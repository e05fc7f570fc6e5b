"""The one answer pipeline (plain and streaming): prepare -> look up -> generate -> finish."""

from gateway.pipeline.pipeline import AnswerPipeline, PendingAnswer
from gateway.pipeline.verdict import CHECK_VERSION, CheckOptions
from gateway.pipeline.voting import CandidateBudget

__all__ = ["CHECK_VERSION", "AnswerPipeline", "CandidateBudget", "CheckOptions", "PendingAnswer"]
