"""HTML for answers and citations. Every piece of corpus or user text goes through ``html.escape`` here."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from rag.models import Answer, Citation

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")
_MARKER = re.compile(r"\[(\d{1,2})\]")
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
    return re.sub(r"\r?\n", " ", text)


def answer_html(answer: Answer, anchor: str, text: str | None = None) -> str:
    """The answer text with its ``[n]`` markers turned into links to ``#<anchor>-n``; ``text`` may be a prefix."""
    body = escape(answer.answer if text is None else text)
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
            + (f'<span class="cc-title">{escape(title)}</span> ' if title else "")
            + f'<span class="cc-name">{escape(citation.source)}</span> '
            f'<span class="cc-score">score {citation.score:.3f}</span></div>'
            f'<p class="cc-context">{escape(ctx.before)}<mark>{escape(ctx.sentence)}</mark>{escape(ctx.after)}</p></li>'
        )
    return f'<ol class="cc-sources">{"".join(items)}</ol>' if items else ""


def message_html(answer: Answer, anchor: str, contexts: list[CitationContext], titles: dict[str, str],
                 text: str | None = None) -> str:
    """One assistant chat message: the answer, then (once complete) its sources. Kept on one line so the
    chat's Markdown renderer treats it as a single HTML block and leaves the escaped text alone."""
    done = text is None
    sources = sources_html(answer, anchor, contexts, titles) if done else ""
    return f'<div class="cc-message">{answer_html(answer, anchor, text)}{sources}</div>'


def error_html(message: str) -> str:
    """A chat message for a rejected question."""
    return f'<div class="cc-error">{escape(message)}</div>'


def articles_html(rows: list[tuple[str, str, int]]) -> str:
    """The corpus tab's table of (source, title, sentences)."""
    if not rows:
        return '<p class="cc-empty">No article is indexed yet.</p>'
    body = "".join(f"<tr><td>{escape(source)}</td><td>{escape(title)}</td><td class='cc-count'>{count}</td></tr>"
                   for source, title, count in rows)
    total = sum(r[2] for r in rows)
    return (f'<table class="cc-articles"><thead><tr><th>Source</th><th>Title</th><th>Sentences</th></tr></thead>'
            f"<tbody>{body}</tbody><tfoot><tr><td colspan='2'>{len(rows)} articles</td>"
            f"<td class='cc-count'>{total}</td></tr></tfoot></table>")


def stream_prefixes(text: str, step: int = 3) -> list[str]:
    """Growing prefixes of ``text``, ``step`` words at a time, for streaming it into a chat."""
    words = re.findall(r"\S+\s*", text)
    return ["".join(words[:i]) for i in range(step, len(words), step)] + [text]
