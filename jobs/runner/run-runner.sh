#!/usr/bin/env bash
# Main task of jobs/github-runner.nomad.hcl. Nomad runs it as the image's user from the image's
# working directory (/home/runner). The runner is ephemeral: it takes exactly one job and exits.
#
# Takes the runner's settings files that the prestart task wrote and removes them from the
# allocation's shared directory, so that this container is the only place they exist.
set -euo pipefail

from="${NOMAD_ALLOC_DIR}/runner"
cp "$from/.runner" "$from/.credentials" "$from/.credentials_rsaparams" .
rm -rf "$from"
exec ./run.sh
