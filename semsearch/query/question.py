"""Whether a query asks a question (pure): hybrid fusion's QUESTION rule (:mod:`semsearch.query.fusion`) weighs the
dense side far the heavier for questions, and :func:`semsearch.query.plan.candidate_lists` asks :func:`is_question`
once per search.

A query asks a question when

1. it ends with a question mark (ASCII, full-width, Arabic), closing quotes, brackets, "!" and trailing dots aside,
   or opens with "¿";
2. or a sentence inside it ends with one ("How do I delete a file? (And other file questions)");
3. or, in English, its last sentence (or the clause after its last colon) opens as a question and no full stop
   closes it: a question word ("how to reset a password", "what is a bloom filter"), an auxiliary verb before its
   subject ("can I undo a commit", "is there a way to …"), one of the auxiliaries that seldom open anything else
   before any word ("does Debian run on ARM", "is python slow"), or a negated one before its subject ("can't we
   drop the lock"); sentences or clauses of context may come first ("I run Debian stable. How do I know which
   release", "I have no root access: how do I …"), and so may "and", "so", "but", "or" or "OK" ("and how about
   init"). People leave the mark off in search boxes: with only (1), the FAQ questions of six collections typed
   without it fell 0.027 on average below max(keyword, semantic); with (2) and (3), and no phrase search for a
   question, those of seven are 0.015 above it (docs/benchmarks.md, rounds 8 and 9).

(3) needs a query of two words or more: one alone is a name ("who" and "which" are commands), though a last sentence of
one word may ask ("my build fails; why"). And it needs the open end: a statement may open with one of these words ("When
rotating, the current log.", "is a class for comparing sequences.") and ends with a full stop ("etc." aside). "do" and
"have" open commands too ("Do a dry run", "Have a look at …"), so they ask only before a person ("do I", "have you");
"is", "are", "was", "were", "does" and "did" before anything but "not" ("is not a code reference" is a Perl message),
the others only before a subject ("Can only compress …", "Should only be specified …" are messages); and a question word
asks only as a word ("which: command not found", "what-if" do not).
"""

from __future__ import annotations

import re
from functools import lru_cache

QUESTION_MARKS = ("?", "\uff1f", "\u061f")  # ASCII, full-width (CJK) and Arabic question marks
# What may follow a question's mark and still end it (round 7): "…?!", "(…?)", a quoted "…?".
AFTER_QUESTION_MARK = " \t\r\n!)]}\"'\u2019\u201d\u00bb"
# Round 8 adds the closing quotes and brackets of other scripts: „…?“, »…?«, 「…？」, （…？）.
CLOSING = AFTER_QUESTION_MARK + "\u201c\u2018\u00ab\u300d\u300f\uff09\u3011"
_ELLIPSIS_END = re.compile(r"(?:\.{2,}|\u2026)+$")  # "how do I…", "why?...": trailing dots close nothing
# A mark closing a word (or its closing quote) inside the text, then more text ("`unstable'? I thought"): not a
# regex's "(?", a "??" operator nor a lone "?".
_SENTENCE_ASKS = re.compile(r"\w[\"'\u2019\u201d)\]]*[?\uff1f\u061f][\"'\u2019\u201d)\]\u300d\u300f\uff09]*\s")
QUESTION_WORDS = ("how", "what", "why", "when", "where", "which", "who", "whom", "whose")
AUXILIARIES = ("is", "are", "am", "was", "were", "can", "could", "does", "did", "should", "would", "will", "shall",
               "may", "might", "must", "has", "had")
# Who or what an auxiliary asks about ("can I", "is there", "does the"): without one, "Should only be specified…"
# would count as a question.
SUBJECTS = ("i", "you", "we", "they", "he", "she", "it", "there", "this", "that", "these", "those", "my", "your",
            "our", "their", "his", "her", "its", "the", "a", "an", "anyone", "anybody", "someone", "somebody",
            "everyone", "everybody")
# "do" and "have" open commands as often as questions ("Do a dry run", "Have a look at the logs"): they ask only
# before a person ("do I", "have you").
COMMAND_AUXILIARIES, PERSONS = ("do", "have"), ("i", "you", "we", "they")
# Auxiliaries that seldom open a statement or a title: they ask before any word but "not" ("does Debian run on ARM",
# "is python slow"; "is not a code reference" is a Perl message with its subject left out). Not "can", "should",
# "could" or "would", which open documentation and messages ("Can only compress unsigned integers in pack", "Should
# only be specified with …", "Could not open …"), nor "can" the noun ("can opener").
ASKING_AUXILIARIES = ("is", "are", "was", "were", "does", "did")
# Negated auxiliaries ask before a subject ("can't we drop the lock", "isn't there a way"); "Can't locate …" is a
# message. "don't" and "haven't" only before a person, as "do" and "have" ("Haven't a clue", "Don't a…").
_NEGATED = "n['\u2019]t"
NEGATED_AUXILIARIES = tuple(f"{stem}{_NEGATED}" for stem in ("is", "are", "was", "were", "does", "did", "ca", "could",
                                                          "should", "would", "wo", "has"))
NEGATED_COMMAND_AUXILIARIES = tuple(f"{stem}{_NEGATED}" for stem in ("do", "have"))
# What may come before the opening word: spaces, opening quotes and brackets, "¿", dots ("…how do I"), and a
# conjunction ("and how about …", "so, what is …"). Not symbols: a Perl message's "$# is no longer supported" opens
# with a placeholder, not a question.
_OPENING = "[\\s\"'\u2018\u201c\u201e\u00ab(\\[\u00bf\u00a1.\u2026]*(?:(?:and|so|but|or|ok|okay)\\b,?\\s+)?"
_OPENS_AS_QUESTION = re.compile(
    # "what's", "Where/how", "(How) does", "…; why", but not "which:", "what-if", "where.sh"
    rf"^{_OPENING}(?:(?:(?:{'|'.join(QUESTION_WORDS)})(?:['\u2019]s)?"
    rf"|(?:{'|'.join(AUXILIARIES + NEGATED_AUXILIARIES)})\s+(?:{'|'.join(SUBJECTS)})"
    rf"|(?:{'|'.join(COMMAND_AUXILIARIES + NEGATED_COMMAND_AUXILIARIES)})\s+(?:{'|'.join(PERSONS)}))(?=[\s/)]|$)"
    rf"|(?:{'|'.join(ASKING_AUXILIARIES)})\s+(?!not\b)[\w\"'(\u2018\u201c])", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!;]\s+")
# A colon before the clause that asks ("I have no root access: how do I …", "… in Tkinter: why"), after a clause of
# CLAUSE_MIN_WORDS or more: a shorter one is a label ("Chapter 2: How it works", "Usage: which [options]", "Step 3:
# Is complete"). Not "::" (a Perl or C++ name's). The last sentence's own opening is asked too: a quoted "ld: cannot
# find" hides nothing.
_CLAUSE_END = re.compile(r"(?<!:):(?!:)\s+")
CLAUSE_MIN_WORDS = 3
# A full stop that closes no question: "what are foo, bar, etc."
_OPEN_ENDED = re.compile(r"\b(?:etc|e\.g|i\.e)\.$", re.IGNORECASE)
# A full stop that ends no sentence: an abbreviation ("e.g. a", "Mr. Smith", "plan B. now") or an ellipsis.
_ABBREVIATION_END = re.compile(r"(?:\.\.|\b\w\.|\b(?:etc|vs|mr|mrs|ms|dr|no)\.)$", re.IGNORECASE)


@lru_cache(maxsize=256)  # asked twice per hybrid search: for the phrase plan and for fusion
def is_question(text: str) -> bool:
    """Whether a query asks a question: it ends with a question mark, a sentence in it does, it opens with "¿", or
    (English) its last sentence opens as a question and no full stop closes it (the module's docstring says why)."""
    if _asks_by_mark(text):
        return True
    if len(text.split()) < 2:  # a query of one word is a name: who(1), which(1)
        return False
    last = _last_sentence(_ELLIPSIS_END.sub("", text.strip()).rstrip())
    if _closed(last):
        return False
    return bool(_OPENS_AS_QUESTION.match(last) or _OPENS_AS_QUESTION.match(_after_last_colon(last)))


def _asks_by_mark(text: str) -> bool:
    stripped = text.strip()
    end = _ELLIPSIS_END.sub("", stripped.rstrip(CLOSING)).rstrip(CLOSING)
    return end.endswith(QUESTION_MARKS) or stripped.startswith("\u00bf") or bool(_SENTENCE_ASKS.search(text))


def _after_last_colon(sentence: str) -> str:
    """The clause after the sentence's last colon, if what comes before it is no label (CLAUSE_MIN_WORDS); else ""."""
    *before, after = _CLAUSE_END.split(sentence)
    return after if before and len(" ".join(before).split()) >= CLAUSE_MIN_WORDS else ""


def _closed(sentence: str) -> bool:
    """Whether a full stop or "!" closes a sentence: not "etc.", "e.g." or "i.e." ("what are foo, bar, etc.")."""
    return sentence.endswith("!") or (sentence.endswith(".") and not _OPEN_ENDED.search(sentence))


def _last_sentence(text: str) -> str:
    start = 0
    for end in _SENTENCE_END.finditer(text):
        if not _ABBREVIATION_END.search(text[max(0, end.start() - 8):end.start() + 1]):
            start = end.end()
    return text[start:]


def ends_with_question_mark(text: str) -> bool:
    """Whether a query ends with a question mark, closing quotes, brackets and "!" aside: all that made a question
    in round 7."""
    return text.rstrip(AFTER_QUESTION_MARK).endswith(QUESTION_MARKS)
