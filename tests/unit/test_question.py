import pytest

from semsearch.query.question import ends_with_question_mark, is_question


@pytest.mark.parametrize("text,asked", [
    ("How do I make a Python script executable?", True), ("why? ", True), ("¿Qué hora es?", True),
    ("東京の天気は？", True), ("ما هذا؟", True), ("…what is Linux?!", True), ("(is it free?)", True),
    ("he asked “why?”", True), ("Stop!", False), ("(see below)", False), ("Can't locate object method", False),
    ("is ?: an operator", False), ("", False)])
def test_a_question_ends_with_a_question_mark(text, asked):
    assert is_question(text) is asked
    assert ends_with_question_mark(text) is asked


@pytest.mark.parametrize("text", [
    "How do I delete a file? (And other file questions...)",  # a sentence inside ends with the mark
    "Why is the CD-ROM full of symlinks? I thought it held stable only!",
    "Why is \"NOMAIL\" an error?/I get messages from cron",  # no: the mark is followed by "/"; caught by "why"
])
def test_a_sentence_ending_with_a_question_mark_asks_a_question_wherever_it_is(text):
    assert is_question(text)


@pytest.mark.parametrize("text", [
    "how to reset a password", "What is a closure", "what's new in 3.12", "Why does my csh alias not work",
    "where to obtain standards.texi", "WHO wrote the tcsh manual", "Which package provides ls",
    "can I undo a git commit", "Is there a way to list every installed package", "does the kernel support zram",
    "should we pin versions", "“How do I quit vim”", "how do I use os.path.join",
    "I run Debian stable. How do I know which release",  # the question after a sentence of context
    "I'm using Ubuntu; how do I migrate to Debian",
])
def test_an_english_question_without_its_mark_is_one_by_its_opening_words(text):
    assert is_question(text)
    assert not ends_with_question_mark(text)


@pytest.mark.parametrize("text", [
    "When rotating, the current log.",  # a statement: closed by a full stop
    "is a class for comparing sequences of lines of text.",
    "Do the inverse (almost) of the conversion done by split_header_words.",
    "Do basic configuration for the logging system",  # an auxiliary, but no subject after it
    "Can't locate object method via package",  # "can't" is not "can"
    "When this option is set, create an empty commit. Pass the -m flag to git mailinfo",  # the last: no question
    "How it works. Details follow",
    "however the option is spelt", "whatever works", "Howto for printers",  # words that merely begin alike
    "Sequence (? ...) not implemented in regex", "? to show conformable units",  # marks that end no word
    "Do it!", "postgres connection pooling", "",
])
def test_statements_and_keyword_queries_are_no_questions(text):
    assert not is_question(text)
