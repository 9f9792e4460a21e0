"""Print the dependencies in pyproject.toml (with the dev extra), one per line, for pip -r."""

import sys
import tomllib
from pathlib import Path

project = tomllib.loads(Path(__file__).resolve().parent.parent.joinpath("pyproject.toml").read_text())["project"]
extras = sys.argv[1:]
for requirement in project["dependencies"] + [r for extra in extras for r in project["optional-dependencies"][extra]]:
    print(requirement)
