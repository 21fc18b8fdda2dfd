#!/bin/bash
# Stand-in for safe_sleep.sh of the actions runner (actions/runner src/Misc/layoutroot/
# safe_sleep.sh): sleeps $1 seconds with `sleep` when there is one, else waits it out.

if command -v sleep >/dev/null; then
  sleep "$1"
  exit 0
fi
SECONDS=0
while [[ $SECONDS -lt $1 ]]; do :; done
