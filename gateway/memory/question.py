"""A question's shape: its words with the literal values taken out, so that "How many singers are from France?"
and "how many singers are from 'Spain'" are the same question about different values.

Values are what the analyst would change between two asks of the same question: quoted text, numbers, and
capitalised words inside the sentence (proper nouns: "students from France"). Everything else is lower-cased with
its spacing collapsed and a trailing ?, . or ! dropped."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

# Angle-quote markers no question contains by accident: <q> quoted text, <v> a name, <n> a number. Quoted text and
# a name are different slots: "flights from 'APG'" (a code) and "flights from City Aberdeen" (a place) are not the
# same question, even though both hold one text value.
QUOTED_SLOT = "\u2039q\u203a"
TEXT_SLOT = "\u2039v\u203a"
NUMBER_SLOT = "\u2039n\u203a"

_QUOTED = re.compile(r"""'([^'\n]{1,80})'|"([^"\n]{1,80})"|\u201c([^\u201d\n]{1,80})\u201d"""
                     r"""|\u2018([^\u2019\n]{1,80})\u2019""")
# A number ends at a sentence's full stop ("above 80000."), not inside "1.5.2" or "3rd".
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,12}(?:\.\d{1,6})?(?!\w|\.\d)")
# After whitespace, so the sentence's first word is not taken for a name.
_PROPER = re.compile(r"(?<=\s)[A-Z][A-Za-z]{1,40}(?:\s[A-Z][A-Za-z]{1,40})*")


@dataclass(frozen=True)
class Value:
    text: str  # as written in the question (without its quotes)
    number: bool
    quoted: bool = False

    def same(self, other: Value) -> bool:
        if self.number and other.number:
            return float(self.text) == float(other.text)
        return self.text == other.text


@dataclass(frozen=True)
class QuestionShape:
    template: str  # lower-cased words with QUOTED_SLOT / TEXT_SLOT / NUMBER_SLOT in place of the values
    values: tuple[Value, ...]  # in order of appearance

    @property
    def key(self) -> str:
        """What the store indexes verified pairs by (with the schema fingerprint)."""
        return hashlib.sha256(self.template.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def question_shape(question: str) -> QuestionShape:
    spans: list[tuple[int, int, Value]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in spans)

    for match in _QUOTED.finditer(question):
        text = next(group for group in match.groups() if group is not None)
        spans.append((match.start(), match.end(), Value(text, number=False, quoted=True)))
    for match in _NUMBER.finditer(question):
        if free(match.start(), match.end()):
            spans.append((match.start(), match.end(), Value(match.group(0), number=True)))
    for match in _PROPER.finditer(question):
        if free(match.start(), match.end()):
            spans.append((match.start(), match.end(), Value(match.group(0), number=False)))
    spans.sort(key=lambda span: span[0])
    parts: list[str] = []
    at = 0
    for start, end, value in spans:
        parts.append(question[at:start].lower())
        parts.append(NUMBER_SLOT if value.number else QUOTED_SLOT if value.quoted else TEXT_SLOT)
        at = end
    parts.append(question[at:].lower())
    template = " ".join("".join(parts).split()).rstrip("?.! ")
    return QuestionShape(template=template, values=tuple(value for _, _, value in spans))
