"""The strings of the web UI that need translating: every literal passed to `_`, `N_` or
`plural` in the package's source (what tests/webui/test_translations.py checks against
locales/*.json). `python -m voxbatch_webui.catalog zh` prints the ones zh.json lacks."""

from __future__ import annotations

import ast
import json
import string
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
MARKERS = {"_", "N_"}


def source_strings() -> dict[str, str]:
    """Each translatable string -> where it first appears (file:line)."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            if node.func.id in MARKERS:
                arguments = node.args[:1]
            elif node.func.id == "plural":
                arguments = node.args[1:3]
            else:
                continue
            for argument in arguments:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str) and argument.value:
                    found.setdefault(argument.value, f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


# Calls whose string arguments a person reads: ui elements, notifications, tooltips, texts set
# later, page titles, and the Problems pages show.
_SHOWN_FUNCTIONS = {"label", "button", "notify", "input", "textarea", "select", "checkbox", "switch", "badge",
                    "tooltip", "upload", "page_title", "number", "markdown", "link", "chip", "toggle", "radio",
                    "set_text", "set_content", "Problem", "section", "expansion", "tab"}
_SHOWN_KEYWORDS = {"label", "placeholder", "text", "title", "hint", "caption", "suffix", "prefix"}
_SKIP = {"i18n.py", "catalog.py", "settings.py", "main.py", "recorder.py", "live_player.py", "__main__.py"}


def _readable(node: ast.AST) -> bool:
    """A literal with words in it (not a number, an icon name or a CSS class)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        words = node.value.strip()
        return any(c.isalpha() for c in words) and (" " in words or words[:1].isupper())
    if isinstance(node, ast.JoinedStr):
        return any(_readable(part) for part in node.values if isinstance(part, ast.Constant))
    return False


def raw_strings() -> list[str]:
    """file:line of each string a person reads that does not go through `_` (the check that no
    string ships in English only)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name in _SKIP:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            arguments = [a for a in node.args] if name in _SHOWN_FUNCTIONS else []
            arguments += [k.value for k in node.keywords if k.arg in _SHOWN_KEYWORDS]
            for argument in arguments:
                if _readable(argument):
                    found.append(f"{path.relative_to(PACKAGE)}:{argument.lineno}: {ast.unparse(argument)[:70]}")
    return found


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def missing(language: str) -> dict[str, str]:
    catalogue = json.loads((PACKAGE / "locales" / f"{language}.json").read_text(encoding="utf-8"))
    return {text: where for text, where in source_strings().items() if text not in catalogue}


if __name__ == "__main__":
    print(json.dumps({text: "" for text in missing(sys.argv[1] if len(sys.argv) > 1 else "zh")}, ensure_ascii=False, indent=2))
