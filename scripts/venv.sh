# Sourced by the other scripts: make (once) and activate the project's virtualenv.
# CONVEYOR_VENV overrides its location.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${CONVEYOR_VENV:-$ROOT/.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
install_conveyor() {  # $1: extras, e.g. "dev"
  local spec="$ROOT"
  [ -n "${1:-}" ] && spec="$ROOT[$1]"
  python -m pip install -q --disable-pip-version-check -e "$spec"
}
