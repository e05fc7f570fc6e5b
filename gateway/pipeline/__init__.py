"""The one answer pipeline (plain and streaming): prepare -> recall -> look up -> generate -> finish."""

from gateway.pipeline.pending import PendingAnswer
from gateway.pipeline.pipeline import AnswerPipeline
from gateway.pipeline.verdict import CHECK_VERSION, CheckOptions
from gateway.pipeline.voting import CandidateBudget

__all__ = ["CHECK_VERSION", "AnswerPipeline", "CandidateBudget", "CheckOptions", "PendingAnswer"]
