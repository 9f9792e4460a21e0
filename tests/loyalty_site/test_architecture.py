"""The layout holds: no app imports another app's private names, and no module grows past the
size a reader can hold in mind. (The layering itself is checked by import-linter: .importlinter.)"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "partners", "transfers", "members", "rewards", "referrals", "campaigns", "feedback",
            "engagement", "offers", "loyalty_site")
MAX_MODULE_LINES = 800


def _modules() -> list[Path]:
    return [path for package in PACKAGES if (ROOT / package).is_dir()
            for path in sorted((ROOT / package).rglob("*.py")) if "migrations" not in path.parts]


def _private_imports_from_other_packages(path: Path) -> list[str]:
    own_package = path.relative_to(ROOT).parts[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        package = node.module.split(".")[0]
        if package in PACKAGES and package != own_package:
            found += [f"{path.relative_to(ROOT)}:{node.lineno} imports {node.module}.{alias.name}"
                      for alias in node.names if alias.name.startswith("_")]
    return found


def test_no_app_imports_another_apps_private_names():
    found = [line for path in _modules() for line in _private_imports_from_other_packages(path)]
    assert found == []


def test_no_module_is_longer_than_a_reader_can_hold():
    long = {str(path.relative_to(ROOT)): lines for path in _modules()
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
