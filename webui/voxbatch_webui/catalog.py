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


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def missing(language: str) -> dict[str, str]:
    catalogue = json.loads((PACKAGE / "locales" / f"{language}.json").read_text(encoding="utf-8"))
    return {text: where for text, where in source_strings().items() if text not in catalogue}


if __name__ == "__main__":
    print(json.dumps({text: "" for text in missing(sys.argv[1] if len(sys.argv) > 1 else "zh")}, ensure_ascii=False, indent=2))
