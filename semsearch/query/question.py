"""Whether a query asks a question (pure): hybrid fusion's QUESTION rule (:mod:`semsearch.query.fusion`) weighs the
dense side far the heavier for questions, and :func:`semsearch.query.plan.candidate_lists` asks :func:`is_question`
once per search.

A query asks a question when

1. it ends with a question mark (any script's: ASCII, full-width, Arabic), closing quotes, brackets and "!" aside;
2. or a sentence inside it ends with one ("How do I delete a file? (And other file questions)");
3. or, in English, its last sentence opens as a question and no full stop closes it: a question word ("how to
   reset a password", "what is a bloom filter") or an auxiliary verb before its subject ("can I undo a commit", "is
   there a way to …"), after any sentences of context ("I run Debian stable. How do I know which release"). People
   leave the mark off in search boxes: with only (1), FAQ questions typed without it fell 0.027 on average below
   max(keyword, semantic); with (2) and (3) they are 0.009 above it (docs/benchmarks.md, "Round 8").

(3) needs the open end: a statement may open with one of these words ("When rotating, the current log.", "is a class
for comparing sequences.", "Do the inverse of …"), and it ends with a full stop.
"""

from __future__ import annotations

import re

QUESTION_MARKS = ("?", "\uff1f", "\u061f")  # ASCII, full-width (CJK) and Arabic question marks
# What may follow a question's mark and still end it: "…?!", "(…?)", a quoted "…?".
AFTER_QUESTION_MARK = " \t\r\n!)]}\"'\u2019\u201d\u00bb"
# A mark closing a word inside the text, before more text: not a regex's "(?" nor a "?" standing alone.
_SENTENCE_ASKS = re.compile(r"[^\s(\[{][?\uff1f\u061f]\s")
QUESTION_WORDS = ("how", "what", "why", "when", "where", "which", "who", "whom", "whose")
AUXILIARIES = ("is", "are", "am", "was", "were", "can", "could", "do", "does", "did", "should", "would", "will",
               "shall", "may", "might", "must", "has", "have", "had")
# Who or what an auxiliary asks about ("can I", "is there", "does the"): without one, "Do basic configuration" would
# count as a question.
SUBJECTS = ("i", "you", "we", "they", "he", "she", "it", "there", "this", "that", "these", "those", "my", "your",
            "our", "their", "the", "a", "an")
_OPENS_AS_QUESTION = re.compile(rf"^\W*(?:(?:{'|'.join(QUESTION_WORDS)})\b"
                                rf"|(?:{'|'.join(AUXILIARIES)})\s+(?:{'|'.join(SUBJECTS)})\b)", re.IGNORECASE)
_SENTENCE_BREAK = re.compile(r"(?<=[.!;])\s+(?=\S)")  # one sentence ends and another begins


def is_question(text: str) -> bool:
    """Whether a query asks a question: it ends with a question mark, a sentence in it does, or (English) its last
    sentence opens as a question and no full stop closes it (the module's docstring says why)."""
    if ends_with_question_mark(text) or _SENTENCE_ASKS.search(text):
        return True
    last = _SENTENCE_BREAK.split(text.strip())[-1]
    return bool(_OPENS_AS_QUESTION.match(last)) and not last.endswith((".", "!"))


def ends_with_question_mark(text: str) -> bool:
    """Whether a query ends with a question mark, closing quotes, brackets and "!" aside: all that made a question
    before round 8."""
    return text.rstrip(AFTER_QUESTION_MARK).endswith(QUESTION_MARKS)
