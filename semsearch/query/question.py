"""Whether a query asks a question (pure): hybrid fusion's QUESTION rule (:mod:`semsearch.query.fusion`) weighs the
dense side far the heavier for questions, and :func:`semsearch.query.plan.candidate_lists` asks :func:`is_question`
once per search.

A query asks a question when

1. it ends with a question mark (any script's: ASCII, full-width, Arabic), closing quotes, brackets and "!" aside;
2. or a sentence inside it ends with one ("How do I delete a file? (And other file questions)");
3. or, in English, it opens as a question and is one clause that no full stop closes: a question word ("how to reset
   a password", "what is a bloom filter") or an auxiliary verb before its subject ("can I undo a commit", "is there
   a way to …"). People leave the mark off in search boxes: with only (1), FAQ questions typed without it lost 0.02
   on average against max(keyword, semantic), with (2) and (3) they keep all but 0.003 of their margin
   (docs/benchmarks.md, "Round 8").

(3) needs the clause: a statement may open with one of these words ("When rotating, the current log.", "is a class
for comparing sequences.", "Do the inverse of …") and ends with a full stop, or runs on into another sentence.
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
_SENTENCE_BREAK = re.compile(r"[.!;]\s+\S")  # one sentence ends and another begins


def is_question(text: str) -> bool:
    """Whether a query asks a question: it ends with a question mark, a sentence in it does, or (English) it opens as
    a question and is a single clause not closed by a full stop (the module's docstring says why)."""
    if ends_with_question_mark(text) or _SENTENCE_ASKS.search(text):
        return True
    clause = text.strip()
    return (bool(_OPENS_AS_QUESTION.match(clause)) and not _SENTENCE_BREAK.search(clause)
            and not clause.endswith((".", "!")))


def ends_with_question_mark(text: str) -> bool:
    """Whether a query ends with a question mark, closing quotes, brackets and "!" aside: all that made a question
    before round 8."""
    return text.rstrip(AFTER_QUESTION_MARK).endswith(QUESTION_MARKS)
