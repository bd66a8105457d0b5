"""Write the settings table into README.md from ``rag.config.Settings`` (docs that match the code)."""

from pathlib import Path

from rag.config import Settings

START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def table() -> str:
    """A Markdown table of every setting: variable, default, description."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = "" if field.default in (None, "") else f"`{field.default}`"
        rows.append(f"| `RAG_{name.upper()}` | {default} | {field.description} |")
    return "\n".join(rows)


if __name__ == "__main__":
    readme = Path(__file__).resolve().parent.parent / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}", encoding="utf-8")
