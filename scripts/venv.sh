# Sourced by the other scripts (and by people, in their own shells): make (once) and
# activate the project's virtualenv. CONVEYOR_VENV overrides its location. Strict mode
# (set -euo pipefail) stays inside the subshells below: sourced, the script leaves the
# caller's shell options as they were, so a failing command later does not end that shell.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CONVEYOR_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  (
    set -euo pipefail
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q --upgrade pip
  ) || return 1
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate" || return 1
install_conveyor() (  # $1: extras, e.g. "dev"
  set -euo pipefail
  spec="$ROOT"
  [ -n "${1:-}" ] && spec="$ROOT[$1]"
  python -m pip install -q --disable-pip-version-check -e "$spec"
)
