"""The abstention model's features and probability (no index needed: candidates are built by hand)."""

from rag.answer.abstention import AbstentionModel
from rag.answer.question_types import AnswerType
from rag.retrieve import Candidate


def candidate(dense: float, score: float = 1.0, ranking_dense: float | None = None) -> Candidate:
    """A candidate with the features ``search()`` attaches to every row (``dense``: the packaged model's similarity,
    which the abstention model reads; ``ranking_dense``: the ranking encoder's, the same by default)."""
    ranking = dense if ranking_dense is None else ranking_dense
    return Candidate(0, score, {"dense": ranking, "evidence_dense": dense, "context_coverage": 0.8, "coverage": 0.7,
                                "para_dense_max": 0.5, "evidence_para_dense_max": 0.5, "unknown_names": 0.0,
                                "unknown_terms": 0.0, "query_terms": 4.0})


def test_every_feature_has_a_weight_and_every_weight_a_feature() -> None:
    model = AbstentionModel()
    features = model.features(candidate(0.6), "It opened in 1997.", "It opened in 1997.", AnswerType.DATE)
    assert sorted(features) == sorted(model.feature_names())


def test_the_model_reads_the_packaged_similarity_not_the_ranking_one() -> None:
    # The tuned question encoder ranks; its similarities are not on the scale the model was fitted on.
    model = AbstentionModel()
    sentence = "It opened in 1997."
    plain = model.features(candidate(0.3), sentence, sentence, AnswerType.DATE)
    tuned = model.features(candidate(0.3, ranking_dense=0.9), sentence, sentence, AnswerType.DATE)
    assert plain == tuned and plain["dense"] == 0.3


def test_number_missing_only_for_count_questions_without_a_number() -> None:
    model = AbstentionModel()
    top = candidate(0.6)
    plain = "The pyramid stands in the city centre."
    assert model.features(top, plain, plain, AnswerType.QUANTITY)["number_missing"] == 1.0
    assert model.features(top, "It is 62 metres tall.", plain, AnswerType.QUANTITY)["number_missing"] == 0.0
    assert model.features(top, plain, plain, AnswerType.DESCRIPTION)["number_missing"] == 0.0
    missing = model.probability(model.features(top, plain, plain, AnswerType.QUANTITY))
    present = model.probability(model.features(top, "It is 62 metres tall.", plain, AnswerType.QUANTITY))
    assert missing < present


def test_closer_evidence_is_more_likely_answerable() -> None:
    model = AbstentionModel()
    text = "Astana is the capital."
    low, high = (model.probability(model.features(candidate(d), text, text, AnswerType.PLACE)) for d in (0.2, 0.8))
    assert 0.0 < low < high < 1.0


def test_nothing_retrieved_abstains_even_at_threshold_zero() -> None:
    import numpy as np

    from rag.answer.compose import extractive_answer
    from rag.index.snapshot import Snapshot

    empty = Snapshot.from_sentences("g0", [], np.zeros((0, 384), np.float32))
    draft = extractive_answer("Who founded it?", [], empty, 3, AbstentionModel(), 0.0)
    assert draft.abstained and draft.citations == [] and draft.short_answer is None


def test_with_the_reader_its_margin_moves_the_decision_capped() -> None:
    from rag.answer.abstention import MARGIN_CAP, READER_ABSTENTION

    text = "Astana is the capital."

    def probability(margin: float | None) -> float:
        return READER_ABSTENTION.probability(READER_ABSTENTION.features(candidate(0.6), text, text,
                                                                        AnswerType.PLACE, None, margin))

    assert probability(-8.0) < probability(0.0) < probability(8.0)
    assert probability(MARGIN_CAP) == probability(1000.0) and probability(-MARGIN_CAP) == probability(-1000.0)
    # The model without the reader ignores a margin.
    plain = AbstentionModel()
    assert plain.features(candidate(0.6), text, text, AnswerType.PLACE, None, 5.0)["reader_margin"] == 5.0
    assert plain.probability(plain.features(candidate(0.6), text, text, AnswerType.PLACE, None, 5.0)) == \
        plain.probability(plain.features(candidate(0.6), text, text, AnswerType.PLACE))


def test_each_abstention_model_answers_at_its_own_default_threshold(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rag import Pipeline
    from rag.answer.abstention import ABSTAIN_THRESHOLD, READER_ABSTAIN_THRESHOLD, READER_ABSTENTION
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "index")
    reader_on = Pipeline(settings.with_overrides(reader="on"))
    assert reader_on.abstention == READER_ABSTENTION and reader_on.abstain_threshold == READER_ABSTAIN_THRESHOLD
    assert Pipeline(settings.with_overrides(reader="off")).abstain_threshold == ABSTAIN_THRESHOLD
    # RAG_ABSTAIN_THRESHOLD, when set, holds for either model.
    for reader in ("on", "off"):
        assert Pipeline(settings.with_overrides(reader=reader, abstain_threshold=0.3)).abstain_threshold == 0.3
