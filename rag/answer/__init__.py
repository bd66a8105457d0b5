"""Answering: question types, short answer spans, abstention, follow-up questions, and the optional LLM."""
