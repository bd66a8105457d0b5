"""Find a short answer span of the expected type inside a cited sentence (no model, no network)."""

from __future__ import annotations

import re

from rag.answer.question_types import AnswerType
from rag.index.lexical import STOPWORDS, tokenize, words

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:t(?:ember)?)?"
          r"|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_NUMBER_WORDS = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                 r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
                 r"hundred|thousand|million|billion|dozen|dozens|hundreds|thousands|millions|several|scores?)")
# Word numbers end at a word boundary, so "fourteen" is not read as "four".
_NUM = rf"(?:\d[\d,]*(?:\.\d+)?|\b{_NUMBER_WORDS}\b(?:[- ]{_NUMBER_WORDS}\b)*)"
_PATTERNS: dict[AnswerType, list[re.Pattern[str]]] = {
    AnswerType.DATE: [
        re.compile(r"\b(?:between|from) \d{3,4} (?:and|to|until) \d{3,4}\b"),
        re.compile(rf"\b(?:(?:early|late|mid)[- ])?{_MONTH}\.? \d{{1,2}}(?:st|nd|rd|th)?,? \d{{4}}\b"),
        re.compile(rf"\b\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_MONTH} \d{{4}}\b"),
        re.compile(rf"\b(?:(?:early|late|mid)[- ])?{_MONTH}\.? (?:\d{{1,2}}(?:st|nd|rd|th)?,? )?\d{{4}}\b"),
        re.compile(r"\b\d{4}s?\b(?:\s*(?:–|-|to)\s*\d{2,4})?(?: (?:BC|AD|BCE|CE))?"),
        # Three-digit years only after a preposition of time ("began in 911"), so counts are not taken as years.
        re.compile(r"(?:(?<=\bin )|(?<=\bby )|(?<=\bsince )|(?<=\buntil )|(?<=\bc\. ))\d{3}\b(?: (?:BC|AD|BCE|CE))?"),
        re.compile(r"\b(?:\w+ )?(?:\d+|\w+) (?:years?|yrs?|months?|weeks?|days?|decades?|centuries)"
                   r" (?:ago|later|earlier)\b", re.I),
        re.compile(rf"\b{_MONTH}\b(?: \d{{1,2}})?"),
        re.compile(r"\b\d{1,2}(?:[:.]\d{2})? ?(?:a\.m|p\.m|am|pm)\b\.?"),
        re.compile(r"\b(?:Mon|Tues|Wednes|Thurs|Fri|Satur|Sun)days?\b"),
        re.compile(r"\b(?:the )?(?:\d+(?:st|nd|rd|th)|\w+th) century\b", re.I),
        re.compile(r"\b(?:in|during|last|this|next) (?:the )?"
                   r"(?:summer|winter|spring|autumn|fall|year|month|week)\b", re.I),
        re.compile(r"\b(?:yesterday|today|recently)\b", re.I),
    ],
    AnswerType.NUMBER: [
        re.compile(rf"(?:(?:about|around|approximately|nearly|almost|over|more than|less than|some|up to) )?"
                   rf"[$€£]?{_NUM}(?: ?%| percent| per cent)?(?: (?:million|billion|thousand|hundred))?", re.I),
    ],
    AnswerType.QUANTITY: [
        re.compile(rf"(?:(?:about|around|approximately|nearly|almost|over|more than|some) )?{_NUM}[ -]?"
                   r"(?:m|km|cm|mm|ft|feet|foot|inch(?:es)?|metres?|meters?|miles?|kilometres?|kilometers?|kg|"
                   r"tons?|tonnes?|pounds?|lbs?|years?(?: old)?|storeys?|stories|floors|hours?|minutes?|"
                   r"seconds?|days?|mph|km/h|acres?|hectares?|square \w+)\b", re.I),
    ],
}
_PROPER = re.compile(r"\b(?:[A-Z][\w'’.-]*|of|the|de|von|van|al|bin|la|del|and)(?:\s+(?:[A-Z][\w'’.-]*|of|the|de|"
                     r"von|van|al|bin|la|del))*")
_PLACE_PHRASE = re.compile(r"\b(?:in|at|on|near|from|to|into|across|outside|inside) ((?:the )?(?:\w+ ){0,3}?"
                           r"(?:[A-Z][\w'’-]*)(?:\s+(?:of\s+)?[A-Z][\w'’-]*)*)")
_POSSESSIVE = re.compile(r"['’]s?$")
_CONNECTORS = {"of", "the", "de", "von", "van", "al", "bin", "la", "del", "and"}
# Capitalised only because they open a sentence or clause: never the start of a name.
_OPENERS = {"according", "under", "while", "however", "after", "before", "during", "following", "despite",
            "although", "since", "other", "some", "most", "its", "his", "her", "from", "though",
            "unlike", "like", "besides", "meanwhile", "later", "today", "upon", "within", "without",
            "between", "among", "along", "because", "thus", "therefore", "also", "many", "several"}


def _spans(pattern: re.Pattern[str], text: str, group: int = 0) -> list[tuple[int, int]]:
    return [(m.start(group), m.end(group)) for m in pattern.finditer(text) if m.group(group).strip()]


def _is_opener(word: str) -> bool:
    low = word.lower()
    return low in _OPENERS or low in STOPWORDS


def _proper_spans(text: str) -> list[tuple[int, int]]:
    """Runs of capitalised words, trimmed of connector words at either end, sentence-initial words dropped."""
    spans = []
    for m in _PROPER.finditer(text):
        tokens = list(re.finditer(r"\S+", m.group()))
        while tokens and (tokens[0].group().lower() in _CONNECTORS or _is_opener(tokens[0].group())):
            tokens.pop(0)
        while tokens and tokens[-1].group().lower() in _CONNECTORS:
            tokens.pop()
        if not tokens:
            continue
        start, end = m.start() + tokens[0].start(), m.start() + tokens[-1].end()
        # The first word of a sentence is capitalised anyway ("Pushing", "One", "He"): only keep it as part of a
        # longer name. Measured on the tuning articles this loses fewer one-word names than it removes noise.
        if text[:start].strip(" “\"'(") == "" and len(tokens) == 1:
            continue
        if not text[start].isupper():
            continue
        spans.append((start, end))
    return spans


_LIST_BONUS = 0.2
# "How many interceptions": the number followed by the counted noun.
_COUNTED = re.compile(r"\bhow (?:many|much) ((?:\w+ ){0,2}\w+)", re.I)
_COUNTED_BONUS = 0.2
_PLACE_BONUS = 0.4
_PHRASE = (r"((?:the |a |an )?[\w'’-]+(?:\s+(?!(?:and|or|but|which|that|who|from|in|to|by|with|is|was|are|were|as)\b)"
           r"[\w'’-]+){0,4})")
_NAMED = re.compile(r"\b(?:called|known as|named|termed|dubbed|formerly(?: known as)?|nicknamed)\s+" + _PHRASE)
_EXAMPLE_CUE = re.compile(r"\b(?:examples?|instance|such as|include[sd]?|including)\b", re.I)
_EXAMPLE = re.compile(r"\b(?:such as|for example,?|for instance,?|including|e\.g\.,?)\s+" + _PHRASE)
# "What kind of motion …?" is answered by the words in front of "motion": "continuous rotary motion".
_KIND_OF = re.compile(r"\b(?:what|which) (?:type|kind|sort|form|class)s? of (\w+)", re.I)


def _modifier_spans(sentence: str, noun: str, q_words: set[str]) -> list[tuple[int, int]]:
    """The one or two words in front of ``noun`` in the sentence that the question does not already say."""
    stem = tokenize(noun)[:1]
    toks = list(re.finditer(r"[\w'’-]+", sentence))
    out = []
    for i, tok in enumerate(toks):
        if not stem or tokenize(tok.group())[:1] != stem:
            continue
        mods: list[re.Match[str]] = []
        for j in range(i - 1, max(-1, i - 3), -1):
            low = toks[j].group().lower()
            if low in STOPWORDS or low in q_words or sentence[toks[j].end():toks[j + 1].start()].strip():
                break
            mods.insert(0, toks[j])
        if mods:
            out.append((mods[0].start(), mods[-1].end()))
    return out


_QUOTED = re.compile(r"[“\"]([^“”\"]{2,80})[”\"]")
_AGENT = re.compile(r"\bby\s+(?:the\s+)?$", re.I)
_AGENT_BONUS = 0.1
_LIST_GLUE = re.compile(r"^(?:,? and|,|, or| or| &)\s+$")
_PLURAL_CUE = re.compile(r"\b(?:were|are|two|three|four|five|both|several)\b", re.I)


def _joined_lists(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Names joined by "and"/commas ("Koch and Behring") as one span, for questions asking for several."""
    ordered = sorted(spans)
    out = []
    i = 0
    while i < len(ordered):
        start, end = ordered[i]
        j = i
        while j + 1 < len(ordered) and _LIST_GLUE.match(text[end:ordered[j + 1][0]]):
            j += 1
            end = ordered[j][1]
        if j > i:
            out.append((start, end))
        i = j + 1
    return out


def candidate_spans(text: str, kind: AnswerType) -> list[tuple[int, int]]:
    """Character spans of ``text`` that could answer a question of type ``kind``, most specific first."""
    if kind in _PATTERNS:
        found: list[tuple[int, int]] = []
        for pattern in _PATTERNS[kind]:
            found += [s for s in _spans(pattern, text) if not any(a <= s[0] and s[1] <= b for a, b in found)]
        return found
    if kind is AnswerType.PLACE:
        return _spans(_PLACE_PHRASE, text, 1) + _proper_spans(text)
    if kind in (AnswerType.PERSON, AnswerType.ENTITY):
        return _proper_spans(text)
    return []


def best_span(question: str, sentence: str, kind: AnswerType) -> str | None:
    """The candidate span nearest to the question's words in the sentence that does not repeat the question."""
    q_terms = set(tokenize(question))
    q_words = {w for w in words(question) if w not in STOPWORDS}
    anchors = [m.start() for m in re.finditer(r"\w+", sentence) if tokenize(m.group()) and
               tokenize(m.group())[0] in q_terms]
    best: tuple[float, str] | None = None
    candidates = candidate_spans(sentence, kind)
    if kind in (AnswerType.ENTITY, AnswerType.DESCRIPTION):
        # A quoted title or the phrase after "called"/"known as" names the thing asked for (measured better on
        # the tuning articles than requiring "called"/"name" in the question too).
        cued = _spans(_QUOTED, sentence, 1) or _spans(_NAMED, sentence, 1)
        if not cued and _EXAMPLE_CUE.search(question):
            cued = _spans(_EXAMPLE, sentence, 1)
        if not cued and (m := _KIND_OF.search(question)):
            cued = _modifier_spans(sentence, m.group(1), q_words)
        candidates = cued or candidates
    joined: list[tuple[int, int]] = []
    if kind in (AnswerType.PERSON, AnswerType.ENTITY) and _PLURAL_CUE.search(question):
        joined = _joined_lists(sentence, candidates)
    phrases = set(_spans(_PLACE_PHRASE, sentence, 1)) if kind is AnswerType.PLACE else set()
    counted = set(tokenize(m.group(1))) if kind is AnswerType.NUMBER and (m := _COUNTED.search(question)) else set()
    for start, end in joined + candidates:
        span = sentence[start:end].strip(" ,;:.–-\u00a0“”\"'()")
        if kind in (AnswerType.PERSON, AnswerType.PLACE):  # "Koch's proofs" answers "who" with "Koch"
            span = _POSSESSIVE.sub("", span)
        span_words = {w for w in words(span) if w not in STOPWORDS}
        if not span or not span_words and kind not in _PATTERNS:
            continue
        if span_words and span_words <= q_words:  # just echoes the question
            continue
        distance = min((abs(a - (start + end) / 2) for a in anchors), default=len(sentence))
        novelty = len(span_words - q_words) / max(len(span_words), 1)
        score = distance / max(len(sentence), 1) - 0.5 * novelty - _LIST_BONUS * ((start, end) in joined)
        if counted and counted & set(tokenize(sentence[end:end + 40])[:3]):  # "three interceptions"
            score -= _COUNTED_BONUS
        if (start, end) in phrases:  # "born … in Eisleben": a place after a preposition of place
            score -= _PLACE_BONUS
        if kind is AnswerType.PERSON and _AGENT.search(sentence[:start]):  # "designed by James Gamble"
            score -= _AGENT_BONUS
        if best is None or score < best[0]:
            best = (score, span)
    return best[1] if best else None


def has_answer_type(sentence: str, kind: AnswerType) -> bool:
    """Whether the sentence contains anything of the expected answer type (only for typed questions)."""
    if kind in _PATTERNS:
        return bool(candidate_spans(sentence, kind))
    return True
