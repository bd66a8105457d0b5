"""The chat tab: streamed answers with numbered citations, example questions and a clear button."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr
from starlette.exceptions import HTTPException

from rag.errors import RagError
from rag.pipeline import Pipeline
from rag.records import Answer, AnswerDelta, CitationsFound
from rag.web.collections import Collections
from rag.web.limits import RateLimiter, client_key
from rag.web.render import (
    CitationContext,
    context_for,
    error_html,
    message_html,
    question_html,
    user_message,
)
from rag.web.suggestions import SuggestionCache

log = logging.getLogger(__name__)
SUGGESTION_SLOTS = 4
# Pipeline.ask is thread-safe; Gradio's default of one request at a time would queue every other user.
_CONCURRENT_ASKS = 4
Messages = list[dict[str, Any]]
Turns = list[dict[str, str]]


def citation_contexts(pipeline: Pipeline, answer: Answer) -> tuple[list[CitationContext], dict[str, str]]:
    """The paragraph around each cited sentence and the titles of the cited sources (each text read once)."""
    texts: dict[str, str | None] = {}
    titles: dict[str, str] = {}
    contexts = []
    for citation in answer.citations:
        if citation.source not in texts:
            doc = pipeline.store.document(citation.source)
            texts[citation.source] = doc.text if doc else None
            titles[citation.source] = doc.title if doc else ""
        contexts.append(context_for(citation, texts[citation.source]))
    return contexts, titles


async def answer_stream(pipeline: Pipeline, limiter: RateLimiter, question: str, messages: Messages, turns: Turns,
                        client: str) -> AsyncIterator[tuple[Messages, Turns]]:
    """Append the question and stream the answer into the chat: its sources once retrieval is done, its text as the
    LLM writes it (at once when extractive), then the checked answer; ``turns`` keeps plain text for follow-ups."""
    messages = [*messages, {"role": "user", "content": question_html(question)}]
    yield messages, turns
    wait = limiter.retry_after(client)
    if wait:
        refusal = error_html(f"Too many questions at once; please try again in {wait:.0f} s.")
        yield [*messages, {"role": "assistant", "content": refusal}], turns
        return
    anchor = f"cc-{uuid.uuid4().hex[:8]}"
    draft = Answer(question=question, answer="", abstained=False, citations=[])
    contexts: tuple[list[CitationContext], dict[str, str]] = ([], {})
    try:
        async for event in pipeline.astream(question, history=turns):
            if isinstance(event, CitationsFound):
                draft = draft.model_copy(update={"citations": event.citations})
                contexts = await asyncio.to_thread(citation_contexts, pipeline, draft)
            elif isinstance(event, AnswerDelta):
                draft = draft.model_copy(update={"answer": draft.answer + event.text})
            else:
                answer = event.answer
                if answer.citations != draft.citations:
                    contexts = await asyncio.to_thread(citation_contexts, pipeline, answer)
                turns = [*turns, {"role": "user", "content": question},
                         {"role": "assistant", "content": answer.answer}]
                draft = answer
            yield [*messages, {"role": "assistant", "content": message_html(draft, anchor, *contexts)}], turns
    except RagError as exc:
        yield [*messages, {"role": "assistant", "content": error_html(user_message(exc))}], turns
    except Exception as exc:  # keep the chat usable; the details go to the server log
        log.exception("ask failed", exc_info=exc)
        failure = error_html("Sorry, answering failed; please try again later.")
        yield [*messages, {"role": "assistant", "content": failure}], turns


def build_chat_tab(demo: gr.Blocks, collections: Collections, limiter: RateLimiter, suggestions: SuggestionCache
                   ) -> None:
    """Lay out the chat inside the current ``gr.Blocks`` context and wire its events; a corpus picker appears when
    the index holds more than one collection."""
    default = collections.default.settings.collection
    picker = gr.Dropdown(choices=[default], value=default, label="Corpus", visible=False, elem_id="cc-collection",
                         interactive=True)
    turns = gr.State([])
    pending = gr.State("")
    chatbot = gr.Chatbot(elem_id="cc-chat", height="60vh", min_height=280, show_label=False, buttons=["copy"],
                         feedback_options=None, placeholder="Ask a question about the articles in the corpus.",
                         latex_delimiters=[])  # "$$" in an article is text, not a formula
    with gr.Row(elem_classes="cc-suggestions"):
        buttons = [gr.Button(visible=False, size="sm", variant="secondary", elem_classes="cc-suggestion",
                             min_width=120) for _ in range(SUGGESTION_SLOTS)]
    with gr.Row(elem_classes="cc-input-row", equal_height=True):
        box = gr.Textbox(placeholder="Ask a question…", show_label=False, scale=6, container=False,
                         elem_id="cc-question", max_lines=4)
        send = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="cc-send")
        clear = gr.Button("Clear", scale=1, min_width=70, elem_id="cc-clear")

    async def respond(question: str, messages: Messages, history: Turns, chosen: str | None,
                      request: gr.Request) -> AsyncIterator[tuple[Messages, Turns]]:
        if not (question or "").strip():
            yield messages, history
            return
        try:
            pipeline = collections.get(chosen)
        except HTTPException as exc:  # a name the picker never offered
            yield [*(messages or []), {"role": "assistant", "content": error_html(str(exc.detail))}], history
            return
        async for update in answer_stream(pipeline, limiter, question, messages or [], history or [],
                                          client_key(request)):
            yield update

    def offer_collections() -> Any:
        names = collections.names()
        return gr.update(choices=names or [default], value=default, visible=len(names) > 1)

    def take(question: str) -> tuple[str, str]:
        return "", question

    def fill_suggestions() -> list[Any]:
        found = suggestions.get()
        return [gr.update(value=found[i], visible=True) if i < len(found) else gr.update(visible=False)
                for i in range(SUGGESTION_SLOTS)]

    private: dict[str, Any] = {"api_visibility": "private"}
    for trigger, source in [(box.submit, box), (send.click, box)] + [(b.click, b) for b in buttons]:
        trigger(take, inputs=source, outputs=[box, pending], queue=False, **private).then(
            respond, inputs=[pending, chatbot, turns, picker], outputs=[chatbot, turns], show_progress="minimal",
            concurrency_limit=_CONCURRENT_ASKS, concurrency_id="ask", **private)
    clear.click(lambda: ([], [], ""), outputs=[chatbot, turns, box], queue=False, **private)
    chatbot.clear(lambda: [], outputs=turns, queue=False, **private)
    demo.load(fill_suggestions, outputs=buttons, **private)
    demo.load(offer_collections, outputs=picker, **private)
    # Another corpus, another conversation: follow-ups must not lean on answers from the previous one.
    picker.change(lambda: ([], []), outputs=[chatbot, turns], queue=False, **private)
