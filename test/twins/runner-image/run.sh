#!/bin/bash
# Stand-in for run.sh of the actions runner (actions/runner src/Misc/layoutroot/run.sh): starts a
# fresh copy of run-helper.sh.template as run-helper.sh, again each time it exits 2 (restart,
# e.g. after a self-update). With RUNNER_MANUALLY_TRAP_SIG set (the official image sets it) the
# helper runs as a background job in its own process group and INT/TERM received by run.sh are
# passed on to that group as INT (runWithManualTrap): as a container's PID 1, run.sh gets the
# stop signal and the listener must hear it. Exit status: 0 without the trap; the helper's (or,
# when a signal interrupted the wait, 128 + the signal) with it; 7 for a deprecated version when
# ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE is 1.

script=${BASH_SOURCE[0]}
while [ -h "$script" ]; do
  dir=$(cd -P "${script%/*}" && pwd)
  script=$(readlink "$script")
  [[ "$script" != /* ]] && script="$dir/$script"
done
here=$(cd -P "${script%/*}" && pwd)

fresh_helper() {
  cp -f "$here"/run-helper.sh.template "$here"/run-helper.sh
}

deprecated_exit() {
  [[ "$ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE" == "1" && $1 -eq 7 ]]
}

if [[ -z "$RUNNER_MANUALLY_TRAP_SIG" ]]; then
  while :; do
    fresh_helper
    "$here"/run-helper.sh "$@"
    code=$?
    if [[ $code -eq 2 ]]; then
      echo "Restarting runner..."
      continue
    fi
    echo "Exiting runner..."
    deprecated_exit "$code" && exit "$code"
    exit 0
  done
fi

set -m
trap 'kill -INT -"$helper"' INT TERM
while :; do
  fresh_helper
  "$here"/run-helper.sh "$@" &
  helper=$!
  wait "$helper"
  code=$?
  if [[ $code -eq 2 ]]; then
    echo "Restarting runner..."
    continue
  fi
  echo "Exiting runner..."
  deprecated_exit "$code" && exit "$code"
  # No more forwarding; let the helper finish what it prints.
  trap - INT TERM
  wait "$helper"
  exit "$code"
done
