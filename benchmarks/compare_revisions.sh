#!/usr/bin/env bash
# A benchmark module at an earlier revision and at the working tree, alternately, in
# one run, so that "no slower than before" is measured on the same machine and load:
#   bash benchmarks/compare_revisions.sh REV ROUNDS MODULE [ARGS...]
#   bash benchmarks/compare_revisions.sh 06c3c17 3 benchmarks.model_step --device cpu
# REV is checked out in a temporary worktree (removed afterwards) and imported ahead of
# the installed package through PYTHONPATH; both run in this environment's Python.
set -euo pipefail
rev="$1" rounds="$2" module="$3"
shift 3
here="$(cd "$(dirname "$0")/.." && pwd)"
before="$(mktemp -d)/before"
git -C "$here" worktree add --quiet --detach "$before" "$rev"
trap 'git -C "$here" worktree remove --force "$before"' EXIT
for round in $(seq "$rounds"); do
    for tree in "$before" "$here"; do
        label=$([ "$tree" = "$here" ] && echo "working tree" || echo "$rev")
        echo "== round $round of $rounds: $label"
        (cd "$tree" && PYTHONPATH="$tree/src:$tree" python -m "$module" "$@")
    done
done
