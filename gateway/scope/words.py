"""The words of a question and of schema names, made comparable: camelCase and snake_case split, lower case,
plurals folded to a stem, and a small list of synonyms (gateway/scope/synonyms.toml)."""

from __future__ import annotations

import functools
import itertools
import re
import tomllib
from pathlib import Path

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[A-Za-z]+|[0-9]+")
SYNONYMS_FILE = Path(__file__).resolve().parent / "synonyms.toml"
# Words of every question that say nothing about which table is meant.
_STOP_TEXT = """a an the of in on at to for from by with and or not no is are was were be been being do does did
has have had what which who whom whose where when how show list give find return tell me all each every any some
that this these those than then there their its it as per into about over under between both either most least
more less much only also just please number many total count"""
STOP = frozenset(_STOP_TEXT.split())


def stem(word: str) -> str:
    """A crude singular: enough to make `students` meet `student` and `cities` meet `city`."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 4 and word.endswith(("ses", "xes", "zes", "ches", "shes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def name_words(name: str) -> frozenset[str]:
    """`PetType` -> {pet, type}; `home_city_id` -> {home, city, id}; stems."""
    parts = (_CAMEL.sub(" ", piece) for piece in re.split(r"[_\W]+", name) if piece)
    return frozenset(stem(word.lower()) for part in parts for word in _WORD.findall(part))


def question_words(question: str) -> frozenset[str]:
    """The question's content words (stems), and each pair of neighbours written as one (`high schoolers` also
    gives `highschooler`, as a schema names it)."""
    raw = [word.lower() for word in _WORD.findall(_CAMEL.sub(" ", question))]
    words = {stem(word) for word in raw if word not in STOP and len(word) > 1}
    words.update(stem(first + second) for first, second in itertools.pairwise(raw)
                 if first not in STOP and second not in STOP)
    return frozenset(words)


MIN_PREFIX = 4  # `visit` meets `visited`, `teach` meets `teacher`; shorter stems meet too much
MAX_SUFFIX = 3


def related(question_word: str, name_word: str) -> bool:
    """The same word, or one a short ending away from the other (a verb and its noun, a crude stem's miss)."""
    if question_word == name_word:
        return True
    short, long = sorted((question_word, name_word), key=len)
    return len(short) >= MIN_PREFIX and long.startswith(short) and len(long) - len(short) <= MAX_SUFFIX


@functools.lru_cache(maxsize=1)
def synonym_groups() -> dict[str, frozenset[str]]:
    """word -> every word that means the same (stems)."""
    groups = tomllib.loads(SYNONYMS_FILE.read_text(encoding="utf-8"))["groups"]
    meaning: dict[str, set[str]] = {}
    for group in groups:
        stems = {stem(str(word).lower()) for word in group}
        for word in stems:
            meaning.setdefault(word, set()).update(stems)
    return {word: frozenset(same) for word, same in meaning.items()}


def widened(words: frozenset[str]) -> frozenset[str]:
    """The words and their synonyms."""
    groups = synonym_groups()
    return frozenset(word for each in words for word in groups.get(each, frozenset({each})))
