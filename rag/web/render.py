"""HTML for answers, citations, the corpus table and evaluation summaries. Every piece of corpus or user text that
reaches the UI goes through ``display_text`` here: the one sanitising path."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from typing import Any

from rag.errors import IndexNotReadyError, IngestLockedError, InvalidQuestionError, RagError
from rag.evaluation.summary_table import headline, summary_rows
from rag.records import Answer, Citation

# A blank line in any line-ending convention, or Unicode's paragraph separator.
_PARAGRAPH_BREAK = re.compile(r"(?:\r\n|\r|\n)[ \t]*(?:\r\n|\r|\n)|\u2029")
# Every line break form: one inside the chat's one-line HTML block would end it and let Markdown render.
_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x1c-\x1e\x85\u2028\u2029]")
# Bidirectional controls reorder what the reader sees ("nalpak ecnerwal" shown as "kaplan lawrence").
_BIDI_CONTROL = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_MARKER = re.compile(r"\[(\d{1,2})\]")
# " (RAG_MAX_QUESTION_CHARS)" and the like: a setting name means something to an operator, not a visitor.
_SETTING = re.compile(r"\s*\(RAG_[A-Z_]+[^)]*\)")
# Paragraphs longer than this are trimmed to a window around the cited sentence.
_MAX_CONTEXT_CHARS = 900


@dataclass(frozen=True)
class CitationContext:
    """The cited sentence with the text around it inside its paragraph."""

    before: str
    sentence: str
    after: str


def citation_context(text: str, start: int, end: int, max_chars: int = _MAX_CONTEXT_CHARS) -> CitationContext:
    """Split the paragraph holding ``text[start:end]`` into (before, sentence, after), trimmed to ``max_chars``."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    para_start = 0
    for match in _PARAGRAPH_BREAK.finditer(text, 0, start):
        para_start = match.end()
    following = _PARAGRAPH_BREAK.search(text, end)
    para_end = following.start() if following else len(text)
    before, after = text[para_start:start], text[end:para_end]
    room = max(0, max_chars - (end - start)) // 2
    if len(before) > room:
        before = "… " + before[len(before) - room:].lstrip()
    if len(after) > room:
        after = after[:room].rstrip() + " …"
    return CitationContext(_flatten(before), _flatten(text[start:end]), _flatten(after))


def context_for(citation: Citation, document_text: str | None) -> CitationContext:
    """The citation's context, or the sentence alone when the stored text no longer matches its offsets."""
    if document_text is None or document_text[citation.start:citation.end] != citation.text:
        return CitationContext("", citation.text, "")
    return citation_context(document_text, citation.start, citation.end)


def _flatten(text: str) -> str:
    """Line breaks inside a paragraph become spaces (the chat would turn them into <br>)."""
    return _LINE_BREAK.sub(" ", text)


def display_text(text: str) -> str:
    """Text from the corpus or a user as HTML for the UI: escaped, on one line, bidirectional controls shown as
    visible marks (``⟨U+202E⟩``). Only the display changes; citations and the API keep the text verbatim."""
    shown = _BIDI_CONTROL.sub(lambda m: f"\u27e8U+{ord(m.group()):04X}\u27e9", _flatten(text))
    return escape(shown)


def question_html(question: str) -> str:
    """A user's question as a chat message: shown as text, never rendered as Markdown."""
    return f'<div class="cc-question">{display_text(question)}</div>'


def answer_html(answer: Answer, anchor: str, text: str | None = None) -> str:
    """The answer text with its ``[n]`` markers turned into links to ``#<anchor>-n``; ``text`` may be a prefix."""
    body = display_text(answer.answer if text is None else text)
    count = len(answer.citations)

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if not 1 <= n <= count:
            return match.group(0)
        return f'<a class="cc-marker" href="#{anchor}-{n}" data-cite="{anchor}-{n}">[{n}]</a>'

    css = "cc-abstain" if answer.abstained else "cc-answer"
    return f'<div class="{css}">{_MARKER.sub(link, body)}</div>'


def sources_html(answer: Answer, anchor: str, contexts: list[CitationContext], titles: dict[str, str]) -> str:
    """A numbered list of sources: title, file, score and the cited sentence highlighted inside its paragraph."""
    items = []
    for n, (citation, ctx) in enumerate(zip(answer.citations, contexts, strict=True), 1):
        title = titles.get(citation.source, "")
        items.append(
            f'<li class="cc-source" id="{anchor}-{n}"><div class="cc-source-head"><span class="cc-num">[{n}]</span> '
            + (f'<span class="cc-title">{display_text(title)}</span> ' if title else "")
            + f'<span class="cc-name">{display_text(citation.source)}'
            + (f", page {citation.page}" if citation.page else "") + "</span> "
            f'<span class="cc-score">score {citation.score:.3f}</span></div>'
            f'<p class="cc-context">{display_text(ctx.before)}<mark>{display_text(ctx.sentence)}</mark>'
            f'{display_text(ctx.after)}</p></li>'
        )
    return f'<ol class="cc-sources">{"".join(items)}</ol>' if items else ""


def message_html(answer: Answer, anchor: str, contexts: list[CitationContext], titles: dict[str, str],
                 text: str | None = None) -> str:
    """One assistant chat message: the answer, then (once complete) its sources; its id is ``anchor``. Kept on one
    line so the chat's Markdown renderer treats it as a single HTML block and leaves the escaped text alone."""
    done = text is None
    sources = sources_html(answer, anchor, contexts, titles) if done else ""
    return f'<div class="cc-message" id="{anchor}">{answer_html(answer, anchor, text)}{sources}</div>'


def error_html(message: str) -> str:
    """A chat message for a rejected question."""
    return f'<div class="cc-error">{display_text(message)}</div>'


def user_message(exc: RagError) -> str:
    """What a visitor is told of a failed ask: why the question was refused, in words, without the setting names
    and server paths that the CLI's and the API's messages carry for operators."""
    if isinstance(exc, InvalidQuestionError):
        text = _SETTING.sub("", str(exc))
        return text[:1].upper() + text[1:] + "."
    if isinstance(exc, IndexNotReadyError | IngestLockedError):
        return "The articles are being prepared; please try again in a moment."
    return "Sorry, answering failed; please try again later."


def articles_html(rows: list[tuple[str, str, int]]) -> str:
    """The corpus tab's table of (source, title, sentences)."""
    if not rows:
        return '<p class="cc-empty">No article is indexed yet.</p>'
    body = "".join(f"<tr><td>{display_text(source)}</td><td>{display_text(title)}</td>"
                   f"<td class='cc-count'>{count}</td></tr>" for source, title, count in rows)
    total = sum(r[2] for r in rows)
    return (f'<table class="cc-articles"><thead><tr><th>Source</th><th>Title</th><th>Sentences</th></tr></thead>'
            f"<tbody>{body}</tbody><tfoot><tr><td colspan='2'>{len(rows)} articles</td>"
            f"<td class='cc-count'>{total}</td></tr></tfoot></table>")


def summary_html(summary: dict[str, Any]) -> str:
    """An evaluation summary (its headline names the uploaded file) as an HTML table."""
    rows = "".join(f"<tr><td>{display_text(label)}</td><td class='cc-count'>{display_text(value)}</td>"
                   f"<td class='cc-note'>{display_text(note)}</td></tr>"
                   for label, value, note in summary_rows(summary))
    return (f'<div class="cc-eval-summary"><p><strong>{display_text(headline(summary))}</strong></p>'
            f'<table class="cc-articles"><thead><tr><th>metric</th><th>value</th><th></th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")
