"""The part of a schema the model sees. The whole schema when its prompt fits the budget (the model's training
length by default, never more than the served context minus the answer's tokens); otherwise the tables the
question needs (gateway/scope/choose.py), whole, in the schema's order. Grounding, compile and the vote still read
the whole schema: a query may use a table that was not sent. `check.schema_scope` says what was sent."""

from __future__ import annotations

import functools
import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tokenizers import Tokenizer

from gateway.errors import CapExceeded, InvalidRequest
from gateway.scope.choose import WordIndex, choose, word_index
from gateway.scope.tables import ScopeTable, scope_tables

# A pre-token can straddle a join between two statements, or the schema and the template: slack per join.
JOIN_MARGIN_TOKENS = 2
COUNTS_KEPT = 64  # schemas whose per-table token counts are remembered
# No SQL text averages more bytes per token than this with Qwen's tokenizer (DDL runs ~3-4): above it, not counted.
MAX_BYTES_PER_TOKEN = 16


@dataclass(frozen=True)
class Scope:
    text: str  # the schema text that goes into the prompt
    tables_sent: tuple[str, ...]
    tables_total: int

    def as_dict(self) -> dict[str, object]:
        return {"tables_sent": list(self.tables_sent), "tables_total": self.tables_total}


class SameText:
    """One object per distinct schema text among the last few: the check's caches key on the schema, and a
    schema of a megabyte parsed from each request's JSON would otherwise be held once per cache entry."""

    def __init__(self, kept: int = 64) -> None:
        self._kept = kept
        self._texts: dict[str, str] = {}
        self._lock = threading.Lock()

    def same(self, text: str) -> str:
        with self._lock:
            known = self._texts.pop(text, None)
            self._texts[text] = known if known is not None else text  # most recent last
            if len(self._texts) > self._kept:
                self._texts.pop(next(iter(self._texts)))
            return self._texts[text]


class SchemaScoper:
    def __init__(self, tokenizer: Tokenizer, budget_tokens: int) -> None:
        self._tokenizer = tokenizer
        self.budget_tokens = budget_tokens
        self._counts: dict[str, tuple[int, ...]] = {}
        self._lock = threading.Lock()

    def scope(self, question: str, schema: str, pinned: Sequence[str] | None,
              render: Callable[[str, str], str]) -> Scope:
        """The schema text for this question's prompt (`render(question, schema_text)` makes the prompt)."""
        tables = scope_tables(schema)
        pinned = list(pinned or ())
        unknown = [name for name in pinned if name.lower() not in {t.name.lower() for t in tables}]
        if unknown:
            raise InvalidRequest(f"'tables' names tables the schema does not define: {', '.join(unknown[:10])}.",
                                 param="tables", code="unknown_table")
        if not tables:  # nothing to choose from: the whole text, and the context cap decides
            return Scope(schema, (), 0)
        if not pinned and self._whole_fits(render(question, schema)):
            return Scope(schema, tuple(t.name for t in tables), len(tables))  # as written, comments and all
        counts = self._table_counts(schema, tables)
        overhead = self._count(render(question, ""))

        def fits(chosen: list[ScopeTable]) -> bool:
            tokens = sum(counts[position[t.name.lower()]] + JOIN_MARGIN_TOKENS for t in chosen)
            return overhead + tokens <= self.budget_tokens

        position = {table.name.lower(): index for index, table in enumerate(tables)}
        pinned_tables = [t for t in tables if t.name.lower() in {name.lower() for name in pinned}]
        if pinned_tables and not fits(pinned_tables):
            raise CapExceeded(
                f"The pinned tables alone take more than the model's prompt budget of {self.budget_tokens} tokens; "
                "pin fewer tables.", param="tables", code="schema_too_large")
        chosen = choose(question, tables, pinned, fits, _index(tables))
        while True:  # the estimate is an upper bound per join; the rendered prompt is counted once to be sure
            text = _joined(schema, chosen)
            if self._count(render(question, text)) <= self.budget_tokens or len(chosen) <= len(pinned_tables):
                break
            droppable = [t for t in chosen if t not in pinned_tables]
            chosen.remove(droppable[-1])
        if not chosen:  # not one table fits: the whole text, and the context cap says so (context_length_exceeded)
            return Scope(schema, tuple(t.name for t in tables), len(tables))
        return Scope(text, tuple(t.name for t in chosen), len(tables))

    def _whole_fits(self, prompt: str) -> bool:
        """Byte-level BPE makes no more tokens than UTF-8 bytes; a prompt too large to fit at even many bytes per
        token is not counted at all (a 1 MB dump would cost a long tokenizer pass for nothing)."""
        size = len(prompt.encode("utf-8", "surrogatepass"))
        if size <= self.budget_tokens:
            return True
        return size <= self.budget_tokens * MAX_BYTES_PER_TOKEN and self._count(prompt) <= self.budget_tokens

    def _count(self, text: str) -> int:
        return len(self._tokenizer.encode(text, add_special_tokens=False).ids)

    def _table_counts(self, schema: str, tables: Sequence[ScopeTable]) -> tuple[int, ...]:
        key = hashlib.sha256(schema.encode("utf-8", "surrogatepass")).hexdigest()
        with self._lock:
            cached = self._counts.get(key)
        if cached is None:
            cached = tuple(len(e.ids) for e in self._tokenizer.encode_batch([t.text for t in tables],
                                                                             add_special_tokens=False))
            with self._lock:
                if len(self._counts) >= COUNTS_KEPT:
                    self._counts.pop(next(iter(self._counts)))
                self._counts[key] = cached
        return cached


@functools.lru_cache(maxsize=32)
def _index(tables: tuple[ScopeTable, ...]) -> WordIndex:
    return word_index(tables)


def _joined(schema: str, chosen: Sequence[ScopeTable]) -> str:
    """The chosen statements as the schema wrote them, one per line when it used lines, else `; ` (the training
    data's own style)."""
    separator = ";\n" if "\n" in schema.strip() else "; "
    return separator.join(table.text for table in chosen)


__all__ = ["SameText", "SchemaScoper", "Scope"]
