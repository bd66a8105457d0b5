"""Ingest against real Chroma (embedded folder and server): idempotent, replaces changed, removes deleted."""

from pathlib import Path

import pytest

from rag import CorpusError, IngestLockedError, Pipeline, Settings
from rag.index.store import SentenceStore
from rag.ingest.sync import ingest, ingest_lock

from .conftest import assert_index_consistent


def consistent(settings: Settings) -> int:
    """Assert manifest, Chroma and the snapshot agree; return the sentence count."""
    return assert_index_consistent(Pipeline(settings))


def test_ingest_is_idempotent_and_tracks_changes(settings: Settings, corpus_copy: Path) -> None:
    first = ingest([corpus_copy], settings)
    assert first.added == 1 and first.sentences_added >= 12
    count = consistent(settings)

    again = ingest([corpus_copy], settings)
    assert (again.added, again.updated, again.removed, again.unchanged) == (0, 0, 0, 1)
    assert again.sentences_added == 0 and consistent(settings) == count

    article = next(corpus_copy.glob("*.txt"))
    text = article.read_text(encoding="utf-8")
    article.write_text(text.replace("seven people were killed", "eight people were killed"), encoding="utf-8")
    changed = ingest([corpus_copy], settings)
    assert changed.updated == 1
    assert changed.sentences_added == 1 and changed.sentences_removed == 1  # only the edited sentence is re-embedded
    assert consistent(settings) == count
    assert Pipeline(settings).ask("How many people were killed in Taraz?").short_answer == "eight"

    (corpus_copy / "second.md").write_text("# Second\n\nThe Ishim river flows through Astana. It freezes in winter.\n")
    assert ingest([corpus_copy], settings).added == 1
    assert consistent(settings) == count + 2

    (corpus_copy / "second.md").unlink()
    removed = ingest([corpus_copy], settings)
    assert removed.removed == 1 and removed.sentences_removed == 2
    assert consistent(settings) == count


def test_bad_files_are_skipped_and_the_rest_ingested(tmp_path: Path) -> None:
    from .conftest import make_settings

    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Paris is the capital of France. It lies on the Seine.")
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR" + bytes(200))
    (corpus / "junk.md").write_text("1 / 1\n> <\n")
    settings = make_settings(tmp_path / "ix")
    report = ingest([corpus], settings)
    assert report.added == 1 and report.total_sentences == 2
    reasons = " ".join(report.skipped)
    assert "empty.txt: empty" in reasons and "image.txt: binary" in reasons and "junk.md" in reasons


def test_empty_corpus_and_missing_path_are_clear_errors(tmp_path: Path) -> None:
    from .conftest import make_settings

    (tmp_path / "empty").mkdir()
    settings = make_settings(tmp_path / "ix")
    with pytest.raises(CorpusError, match="no readable article"):
        ingest([tmp_path / "empty"], settings)
    with pytest.raises(CorpusError, match="no such file"):
        ingest([tmp_path / "missing"], settings)


def test_a_folder_with_nothing_readable_does_not_wipe_the_index(tmp_path: Path, corpus_copy: Path) -> None:
    from .conftest import make_settings

    settings = make_settings(tmp_path / "ix")
    count = ingest([corpus_copy], settings).total_sentences
    generation = SentenceStore(settings).generation()
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.txt").write_bytes(bytes(range(256)))
    with pytest.raises(CorpusError, match="no readable article.*1 skipped"):
        ingest([tmp_path / "junk"], settings)
    assert SentenceStore(settings).generation() == generation
    assert consistent(settings) == count


def test_second_ingest_is_refused_while_one_holds_the_lock(tmp_path: Path, corpus_copy: Path) -> None:
    from .conftest import make_settings

    settings = make_settings(tmp_path / "ix")
    with ingest_lock(settings), pytest.raises(IngestLockedError, match="another ingest"):
        ingest([corpus_copy], settings)


def test_interrupted_ingest_resumes_cleanly(tmp_path: Path, corpus_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import make_settings

    for i in range(3):
        (corpus_copy / f"extra{i}.txt").write_text(f"Article {i} talks about topic number {i}. It has two lines.")
    settings = make_settings(tmp_path / "ix")
    calls = {"n": 0}
    # Ingest writes each batch's manifest entries in one put_documents call, after the batch's sentences.
    original = SentenceStore.put_documents

    def crash_after_first(self: SentenceStore, *args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt("simulated crash")
        original(self, *args, **kwargs)

    monkeypatch.setattr(SentenceStore, "put_documents", crash_after_first)
    with pytest.raises(KeyboardInterrupt):
        ingest([corpus_copy], settings)
    monkeypatch.setattr(SentenceStore, "put_documents", original)
    # While dirty, an ask must not trust a half-written snapshot; the next ingest completes the job.
    assert SentenceStore(settings).generation().startswith("dirty-")
    report = ingest([corpus_copy], settings)
    assert report.total_sentences == consistent(settings)
    clean = make_settings(tmp_path / "clean")
    assert ingest([corpus_copy], clean).total_sentences == report.total_sentences
