#!/usr/bin/env bash
# The gate's logic, as .github/workflows/gate.yml runs it (and tests/test_gate_script.py too):
# pick the recipes a change touches, run them at the demo budget into a candidate folder, run
# `bench gate` against the committed baseline, write its markdown report, exit with its code.
#
#   bash scripts/gate.sh [--baseline DIR] [--candidate DIR] [--report FILE] [--recipes DIR]
#                        [--] (all | CHANGED_PATH...)
#
# CHANGED_PATH: the paths a pull request changes, relative to the repository root (as
# `git diff --name-only` prints them). A change under bench/ or scripts/, to pyproject.toml or to
# a gate workflow runs every recipe; a change to recipes/NAME.py runs that recipe (read from
# --recipes DIR, default recipes; a deleted recipe is skipped); other paths run nothing.
# "all" runs every recipe.
#
# Defaults: --baseline leaderboard/baseline, --candidate candidate (use a fresh folder: every
# result in it is judged), --report gate.md.
# Environment: BENCH, the bench command (default .venv/bin/bench; e.g. "python -m bench.cli");
# BENCH_DATA, a dataset folder (default: the embedded demo split); BENCH_CACHE, the cache.
#
# The budget below is fixed: the committed baseline was produced with it (same command, then
# `bench gate --update-baseline`), and the gate refuses pairs whose epochs or batch caps differ.
#
# Exit code: the gate's. 0: no regression (or nothing to run); 1: a recipe regressed, failed or
# diverged; 2: refused (results that are not comparable, or unreadable), with the reason in the
# report, except "new recipe, no baseline yet", which passes.
set -uo pipefail

BUDGET=(--epochs 1 --max-batches 4 --no-pipeline)

baseline=leaderboard/baseline
candidate=candidate
report=gate.md
recipes=recipes
while [ $# -gt 0 ]; do
  case "$1" in
    --baseline) baseline=$2; shift 2 ;;
    --candidate) candidate=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    --recipes) recipes=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "gate.sh: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done

read -r -a bench <<< "${BENCH:-.venv/bin/bench}"

all=0
selected=()
for path in "$@"; do
  case "$path" in
    all | bench/* | scripts/* | pyproject.toml | .github/workflows/gate*.yml) all=1 ;;
    recipes/*/*) ;;
    recipes/*.py)
      name=${path#recipes/}
      if [ -f "$recipes/$name" ]; then selected+=("$recipes/$name"); fi ;;
  esac
done
if [ "$all" = 1 ]; then
  selected=("$recipes")
fi

if [ ${#selected[@]} -eq 0 ]; then
  mkdir -p "$(dirname "$report")"
  printf '### bench gate: nothing to run\n\nNo recipe changed, and neither did bench/, scripts/ or pyproject.toml.\n' \
    | tee "$report"
  exit 0
fi

data=()
if [ -n "${BENCH_DATA:-}" ]; then data=(--data "$BENCH_DATA"); fi

echo "gate.sh: running ${selected[*]} at the demo budget (${BUDGET[*]}) into $candidate" >&2
# A recipe that fails or diverges makes `bench run` exit non-zero; its result is recorded and the
# gate reports it as a regression, so carry on to the gate either way.
"${bench[@]}" run "${selected[@]}" --results "$candidate" "${BUDGET[@]}" "${data[@]}" \
  --no-wandb --no-progress
echo "gate.sh: bench run exited with $?" >&2

"${bench[@]}" gate --baseline "$baseline" --candidate "$candidate" --markdown "$report"
code=$?
if [ -f "$report" ]; then
  printf '\nRan %s at the gate budget `%s` on %s.\n' "${selected[*]}" "${BUDGET[*]}" \
    "${BENCH_DATA:-the demo split}" >> "$report"
else
  printf '### bench gate: :no_entry: no report\n\n`bench gate` exited with %s and wrote no report.\n' \
    "$code" > "$report"
  [ "$code" = 0 ] && code=2
fi
echo "gate.sh: bench gate exited with $code" >&2
exit "$code"
