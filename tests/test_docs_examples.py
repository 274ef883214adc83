"""Every Python example in the README and docs/ runs as written, and every radproof import they name exists.

The ```python blocks of one document run in order, as one script, in a fresh folder (they build what
they need: a CA, phantoms). Shell blocks are not run, but the ``from radproof... import ...`` statements
they contain (``python -c "..."``) must resolve, so a renamed module cannot leave a broken recipe behind.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
DOCUMENTS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_IMPORT = re.compile(r"\bfrom (radproof(?:\.\w+)*) import (?:\(([^)]*)\)|([\w, ]+))")


def _blocks(doc: Path, language: str | None = None) -> list[str]:
    text = doc.read_text(encoding="utf-8")
    return [m.group(2) for m in _FENCE.finditer(text) if language is None or m.group(1) == language]


def _with_python() -> list[Path]:
    return [d for d in DOCUMENTS if _blocks(d, "python")]


def test_the_documents_with_python_examples_are_found() -> None:
    names = {d.name for d in _with_python()}
    assert {"README.md", "api.md", "check.md", "watermark.md"} <= names


@pytest.mark.parametrize("doc", _with_python(), ids=lambda d: d.name)
def test_python_examples_run_as_written(doc: Path, tmp_path: Path) -> None:
    parts = []
    for i, block in enumerate(_blocks(doc, "python")):
        parts.append(f"# --- {doc.name}, python block {i + 1}\n{block}")
    script = tmp_path / f"{doc.stem}_examples.py"
    script.write_text("\n".join(parts), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RADPROOF_")}
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{doc.name} examples failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"


def _named_imports() -> list[tuple[str, str, str]]:
    found = []
    for doc in DOCUMENTS:
        for block in _blocks(doc):
            for module, grouped, plain in _IMPORT.findall(block):
                for part in (grouped or plain).split(","):
                    words = part.split()
                    if words:  # "name" or "name as alias"
                        found.append((doc.name, module, words[0]))
    return found


def test_every_radproof_import_in_the_documents_resolves() -> None:
    found = _named_imports()
    assert any(module == "radproof.detect.lab.manifest" for _, module, _ in found)  # the detector recipes
    missing = []
    for doc, module, name in found:
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            if exc.name and exc.name.startswith("radproof"):
                missing.append(f"{doc}: {module} ({exc})")
            continue  # an optional dependency (torch) not installed here
        if not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{doc}: {module} has no {name}")
    assert not missing, "\n".join(missing)
