#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter: $PYTHON, the version in .python-version
# (under pyenv), python3.13/python3.12/python3 on PATH, or any pyenv 3.12+/3.13+ install.
set -u
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; }
candidates=()
[ -n "${PYTHON:-}" ] && candidates+=("$PYTHON")
root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
[ -f .python-version ] && candidates+=("$root/versions/$(tr -d '[:space:]' < .python-version)/bin/python3")
for name in python3.13 python3.12 python3; do
  path=$(command -v "$name" 2>/dev/null) && candidates+=("$path")
done
for dir in "$root"/versions/3.13* "$root"/versions/3.12*; do candidates+=("$dir/bin/python3"); done
for candidate in "${candidates[@]}"; do
  if [ -x "$candidate" ] && ok "$candidate"; then echo "$candidate"; exit 0; fi
done
echo "No Python 3.12 or newer found. Install one (e.g. 'pyenv install 3.12') or run with PYTHON=/path/to/python3.12." >&2
exit 1
