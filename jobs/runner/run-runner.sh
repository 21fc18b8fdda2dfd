#!/usr/bin/env bash
# Main task of jobs/github-runner.nomad.hcl. Nomad runs it as the image's user from the image's
# working directory (/home/runner). The runner is ephemeral: it takes exactly one job and exits.
#
# Takes the runner's settings files that the prestart task wrote and removes them from the
# allocation's shared directory, so that this container is the only place they exist.
#
# With the job's docker variable set (RUNNER_DOCKER), waits until the daemon answers, so that the
# first step that needs Docker finds it. With "dind" the daemon runs in the docker task, which sees
# the allocation's shared directory at /home/runner: the runner's _work and a copy of its externals
# go there, because the runner bind-mounts them into job containers (`container:`) by their paths
# here, and the daemon resolves those paths in its own container.
set -euo pipefail

from="${NOMAD_ALLOC_DIR}/runner"
cp "$from/.runner" "$from/.credentials" "$from/.credentials_rsaparams" .
rm -rf "$from"

# wait_for_docker HINT: until the daemon answers GET /_ping as the docker CLI reaches it
# (DOCKER_HOST, and with TCP the client certificate in DOCKER_CERT_PATH), for at most
# RUNNER_DOCKER_WAIT_SECONDS; the docker task may still be generating its certificates.
wait_for_docker() {
  local waited=0 limit="${RUNNER_DOCKER_WAIT_SECONDS:-120}" ping=(curl -fsS --max-time 5 -o /dev/null)
  case "$DOCKER_HOST" in
    unix://*) ping+=(--unix-socket "${DOCKER_HOST#unix://}" http://docker/_ping) ;;
    tcp://*)
      local certs="${DOCKER_CERT_PATH:?}"
      ping+=(--cacert "$certs/ca.pem" --cert "$certs/cert.pem" --key "$certs/key.pem" "https://${DOCKER_HOST#tcp://}/_ping")
      ;;
    *)
      echo "runner: DOCKER_HOST ${DOCKER_HOST} is neither unix:// nor tcp://" >&2
      exit 1
      ;;
  esac
  until "${ping[@]}" 2>/dev/null; do
    if [ "$waited" -ge "$limit" ]; then
      echo "runner: no Docker daemon answers at ${DOCKER_HOST} after ${limit} s ($1)" >&2
      exit 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

case "${RUNNER_DOCKER:-none}" in
  none) ;;
  dind)
    if [ "$PWD" != "${RUNNER_DOCKER_SHARED_AT:?}" ]; then
      echo "runner: docker = \"dind\" needs the runner in ${RUNNER_DOCKER_SHARED_AT} (the docker task sees the shared directory there), not $PWD" >&2
      exit 1
    fi
    mkdir -p "${NOMAD_ALLOC_DIR}/_work" "${NOMAD_ALLOC_DIR}/externals"
    cp -R externals/. "${NOMAD_ALLOC_DIR}/externals/"
    rm -rf _work
    ln -s "${NOMAD_ALLOC_DIR}/_work" _work
    wait_for_docker "see the docker task's log"
    ;;
  host-socket)
    wait_for_docker "uid $(id -u) must be able to use the socket: set the job variable docker_socket_gid to its group id"
    ;;
  *)
    echo "runner: unknown RUNNER_DOCKER \"${RUNNER_DOCKER}\"" >&2
    exit 1
    ;;
esac
exec ./run.sh
