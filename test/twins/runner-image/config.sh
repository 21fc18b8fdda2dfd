#!/bin/bash
# Stand-in for config.sh of the actions runner (actions/runner src/Misc/layoutroot/config.sh),
# for the nomad-gha-dispatcher test twins: refuses to run as root unless RUNNER_ALLOW_RUNASROOT is
# set, records the environment (env.sh), and hands over to bin/Runner.Listener: `remove` as given,
# anything else as `configure`. (The real script also checks the .NET dependencies with ldd; the
# stand-in has none to check.)

if [ "$(id -u)" -eq 0 ] && [ -z "$RUNNER_ALLOW_RUNASROOT" ]; then
  echo "Must not run with sudo"
  exit 1
fi

# Work from the directory the script really lives in (following symlinks), as the real one does.
script=${BASH_SOURCE[0]}
while [ -h "$script" ]; do
  dir=$(cd -P "${script%/*}" && pwd)
  script=$(readlink "$script")
  [[ "$script" != /* ]] && script="$dir/$script"
done
cd "$(cd -P "${script%/*}" && pwd)" || exit 1

# shellcheck source=env.sh
source ./env.sh

shopt -s nocasematch
if [[ "$1" == "remove" ]]; then
  ./bin/Runner.Listener "$@"
else
  ./bin/Runner.Listener configure "$@"
fi
