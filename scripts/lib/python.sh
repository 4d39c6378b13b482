# Shared by the test scripts that make a Python venv: `find_python` prints a Python >= 3.13
# interpreter (pyenv's first, then PATH), or fails.
find_python() {
  local candidate
  for candidate in "$HOME"/.pyenv/versions/3.1[3-9]*/bin/python "$(command -v python3.13 || true)" \
    "$(command -v python3 || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 13) else 1)' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}
