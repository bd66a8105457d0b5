"""The web faces: the HTTP API, the Gradio UI, the widget, and what they share (limits, rendering, the guard)."""
