#!/usr/bin/env bash
# Prestart task of jobs/github-runner.nomad.hcl. Nomad runs it as the image's user (runner,
# uid 1001, in the official image) from the image's working directory (/home/runner).
#
# Fetches this runner's credential from Vault, once, with the single-use wrapping token of the
# dispatch, and turns it into the runner's own settings files (.runner, .credentials,
# .credentials_rsaparams) in the allocation's shared directory, where the main task picks them
# up. The credential itself, and a registration token, never leave this task: the main task runs
# the workflow's steps and gets only what the runner needs.
# shellcheck disable=SC2154 # NOMAD_META_* and VAULT_* come from Nomad (dispatch meta, task env)
set -euo pipefail
umask 077
# Nomad sets these from the dispatch meta; a job run by hand without them stops here, by name.
: "${NOMAD_META_runner_name:?}" "${NOMAD_META_credential_wrap_token:?}" "${VAULT_ADDR:?}"

runner_files=(.runner .credentials .credentials_rsaparams)
out="${NOMAD_ALLOC_DIR}/runner"
mkdir -p "$out"

# The token goes in a header read from a file descriptor: never on a command line, where any
# process of the container could read it from /proc.
vault_headers() {
  printf 'X-Vault-Token: %s\n' "$NOMAD_META_credential_wrap_token"
  if [ -n "${VAULT_NAMESPACE:-}" ]; then printf 'X-Vault-Namespace: %s\n' "$VAULT_NAMESPACE"; fi
}
credential=$(curl -fsS --retry 3 -X POST -H @<(vault_headers) "${VAULT_ADDR}/v1/sys/wrapping/unwrap")

# Two lines: the kind of credential, and the credential itself (JIT config or registration token).
{ read -r kind; read -r value; } < <(jq -r '.data.data | .kind, (.jitconfig // .registration_token // "")' <<<"$credential")
case "$kind" in
  jit)
    # A JIT config is the runner's settings files, base64 each, in base64 JSON. Only the three
    # known names are written, whatever else the config holds.
    base64 -d <<<"$value" |
      jq -r --args 'to_entries[] | select(.key | IN($ARGS.positional[])) | "\(.key) \(.value)"' "${runner_files[@]}" |
      while read -r name content; do base64 -d <<<"$content" >"$out/$name"; done
    ;;
  token)
    ./config.sh --unattended --ephemeral --replace --work _work \
      --url "$NOMAD_META_runner_scope_url" --token "$value" \
      --name "$NOMAD_META_runner_name" --labels "$NOMAD_META_runner_labels" --no-default-labels
    cp "${runner_files[@]}" "$out/"
    ;;
  *)
    echo "the credential of ${NOMAD_META_runner_name} is neither a JIT config nor a registration token" >&2
    exit 1
    ;;
esac

for name in "${runner_files[@]}"; do
  if [ ! -s "$out/$name" ]; then
    echo "runner ${NOMAD_META_runner_name}: $name missing from its configuration" >&2
    exit 1
  fi
done
echo "runner ${NOMAD_META_runner_name} configured"
