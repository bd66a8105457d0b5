"""Span rules of the heuristic short-answer extractor, on synthetic sentences."""

from __future__ import annotations

import pytest

from rag.answer.question_types import AnswerType, answer_type, span_type
from rag.answer.spans import best_span


@pytest.mark.parametrize(("question", "sentence", "expected"), [
    # A clause opener is capitalised only because it starts the sentence: the name after it is the answer.
    ("Who led the expedition?", "Under captain Mirela Vostok, the expedition reached the pass.", "Mirela Vostok"),
    ("Who described the valley first?", "According to Tomas Brandl, the valley was described in a letter.",
     "Tomas Brandl"),
])
def test_sentence_openers_are_not_names(question: str, sentence: str, expected: str) -> None:
    assert best_span(question, sentence, AnswerType.PERSON) == expected


def test_possessive_is_dropped_from_a_name() -> None:
    sentence = "It was not until Arvid Lund's 1890 survey that the harbour was mapped."
    assert best_span("Who surveyed the harbour?", sentence, AnswerType.PERSON) == "Arvid Lund"


def test_passive_agent_wins_over_a_nearer_capitalised_word() -> None:
    sentence = "The North Hall, in a Gothic style, was designed by Hanna Kessler in the spring."
    assert best_span("Who designed the North Hall?", sentence, AnswerType.PERSON) == "Hanna Kessler"


@pytest.mark.parametrize(("question", "expected"), [
    ("Who were the two founders of the guild?", "Ida Marsh and Olav Berg"),
    ("Who founded the guild?", "Ida Marsh"),
])
def test_names_joined_by_and_only_for_plural_questions(question: str, expected: str) -> None:
    sentence = "The guild, founded by Ida Marsh and Olav Berg, met in the old mill."
    assert best_span(question, sentence, span_type(question)) == expected


def test_naming_question_takes_the_quoted_title() -> None:
    sentence = 'The museum website has a feature called "Browse the Archive," though not every item is there.'
    question = "What is the search feature on the museum website called?"
    assert best_span(question, sentence, span_type(question)) == "Browse the Archive"


def test_untyped_question_without_a_quoted_title_has_no_span() -> None:
    """A description question keeps the old behaviour (whole sentence) when no rule applies."""
    sentence = "The affair caused lasting damage to the reputation of the council."
    question = "How did the affair affect the council?"
    assert span_type(question) is AnswerType.DESCRIPTION
    assert best_span(question, sentence, AnswerType.DESCRIPTION) is None


def test_one_capitalised_word_opening_the_sentence_is_not_a_name() -> None:
    sentence = "Weary, they rested near the pass while the Aurora crew kept watch."
    assert best_span("Who rested near the pass?", sentence, AnswerType.PERSON) == "Aurora"


def test_word_numbers_end_at_a_word_boundary() -> None:
    sentence = "Agreement was reached on fourteen points out of twenty."
    assert best_span("How many points were agreed?", sentence, AnswerType.NUMBER) == "fourteen"


def test_number_followed_by_the_counted_noun_wins() -> None:
    sentence = "Goalkeeper Ruiz, aged 31, made three important late saves."
    assert best_span("How many saves did Ruiz make?", sentence, AnswerType.NUMBER) == "three"


@pytest.mark.parametrize(("question", "sentence", "expected"), [
    ("What are the small agents called?", "The filter traps small agents, known as spores, before they spread.",
     "spores"),
    ("What is an example of a rotating part?", "Rotating parts (such as a flywheel) wear out first.", "a flywheel"),
])
def test_naming_and_example_cues_take_the_phrase_after_the_marker(question: str, sentence: str,
                                                                  expected: str) -> None:
    assert best_span(question, sentence, span_type(question)) == expected


@pytest.mark.parametrize(("question", "sentence", "expected"), [
    ("What day was the fair moved to?", "The fair was moved to the Friday evening.", "Friday"),
    ("When did the bell ring?", "At 6 a.m. the bell rang twice.", "6 a.m"),
    ("When was the hall built?", "The hall was built between 1859 and 1865 by the city.", "between 1859 and 1865"),
])
def test_date_forms(question: str, sentence: str, expected: str) -> None:
    assert best_span(question, sentence, span_type(question)) == expected


@pytest.mark.parametrize(("question", "kind"), [
    ("When did the bell ring?", AnswerType.DATE),
    ("What does a cell release when it meets a virus?", AnswerType.ENTITY),
    ("How old was the captain when she retired?", AnswerType.QUANTITY),
])
def test_when_is_a_date_question_only_without_another_wh_word(question: str, kind: AnswerType) -> None:
    assert span_type(question) is kind


def test_place_after_a_preposition_of_place_wins_over_a_nearer_name() -> None:
    sentence = "Tomas Brandl, son of Hana Novak, was born in Ostrava."
    assert best_span("Where was Tomas Brandl born?", sentence, AnswerType.PLACE) == "Ostrava"


def test_span_refinements_leave_the_abstention_type_alone() -> None:
    """The abstention features were fitted on ``answer_type``; only the span uses the refined type."""
    question = "What does a cell release when it meets a virus?"
    assert answer_type(question) is AnswerType.DATE
    assert span_type(question) is AnswerType.ENTITY
    assert span_type("Which team won the cup?") is AnswerType.ENTITY


def test_kind_of_question_takes_the_words_in_front_of_the_noun() -> None:
    sentence = "In 1781 Anna Holt patented a pump that produced steady rotary motion."
    question = "What kind of motion did the pump produce?"
    assert best_span(question, sentence, span_type(question)) == "steady rotary"
