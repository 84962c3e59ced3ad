#!/usr/bin/env bash
# The whole example in one command: a fresh git repository from this directory, the
# images dataset, then `conveyor pipeline ci` (build, tag with the commit, push when a
# registry is given, update the pipelines, run them) and the montage copied out.
#   examples/pachyderm-edges/run.sh [WORK_DIR]
# environment: CONVEYOR_REGISTRY=HOST:PORT pushes there (e.g. from
#   `eval "$(scripts/engines/registry.sh env)"`: CONVEYOR_TEST_REGISTRY); CONVEYOR
#   (the command, default conveyor); podman set up by scripts/engines/podman.sh.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="${1:-$(mktemp -d -t conveyor-edges.XXXXXX)}"
conveyor=(${CONVEYOR:-conveyor})
registry="${CONVEYOR_REGISTRY:-${CONVEYOR_TEST_REGISTRY:-}}"

mkdir -p "$work"
cp -r "$here/." "$work/"
cd "$work"
rm -f run.sh
mkdir -p .conveyor
printf '.conveyor/\nmontage.pgm\n' >.gitignore
push=()
if [ -n "$registry" ]; then
    printf '[containers]\nregistry = "%s"\n' "$registry" >.conveyor/config.toml
    push=(--push)
fi
git init -q -b main
git add -A
git -c user.name=example -c user.email=example@localhost.invalid commit -q -m "edge detection"

"${conveyor[@]}" data create images -d "pictures (PGM)"
"${conveyor[@]}" data put images:/ images/*.pgm -m "three pictures"
"${conveyor[@]}" pipeline ci -f edges.json -f montage.json "${push[@]}"
"${conveyor[@]}" data get montage:/montage.pgm montage.pgm
echo "montage: $work/montage.pgm (each picture beside its edges)"
