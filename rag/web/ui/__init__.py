"""The web UI: the Gradio chat, corpus and embed tabs, and the HTML rendering they share (always escaped)."""
