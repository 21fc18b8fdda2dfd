#!/usr/bin/env bash
# Prestart task of jobs/github-runner.nomad.hcl. Nomad runs it as the image's user (runner,
# uid 1001, in the official image) from the image's working directory (/home/runner).
#
# Fetches this runner's credential from Vault, once, and turns it into the runner's own settings
# files (.runner, .credentials, .credentials_rsaparams) in the allocation's shared directory,
# where the main task picks them up. The credential itself, a registration token and any Vault
# token never leave this task: the main task runs the workflow's steps and gets only what the
# runner needs.
#
# With workload identity (the job's vault block), Nomad put a Vault token in this task's secrets
# directory; it may read this job's runner secrets and nothing else, and is revoked once read.
# Without it (the wrapping-token fallback), the dispatch meta holds a single-use wrapping token;
# anyone who can read the job can see it, so it is checked before use, and a token that is spent,
# expired or made for another secret ends this task with exit code 97, which the dispatcher treats
# as a stolen credential.
# shellcheck disable=SC2154 # NOMAD_META_*, NOMAD_* and VAULT_* come from Nomad (dispatch meta, task env)
set -euo pipefail
umask 077
# Nomad sets these from the dispatch meta and the job; a job run by hand without them stops here, by name.
: "${NOMAD_META_runner_name:?}" "${VAULT_ADDR:?}" "${VAULT_KV_MOUNT:?}" "${VAULT_KV_PREFIX:?}" "${NOMAD_JOB_PARENT_ID:?}"

runner="$NOMAD_META_runner_name"
runner_files=(.runner .credentials .credentials_rsaparams)
out="${NOMAD_ALLOC_DIR}/runner"
secret_path="${VAULT_KV_MOUNT}/data/${VAULT_KV_PREFIX}/runners/${NOMAD_NAMESPACE}/${NOMAD_JOB_PARENT_ID}/${runner}"
identity_token_file="${NOMAD_SECRETS_DIR}/vault_token"
# The job's vault_ca_pem, when Vault has a private CA: then only that CA is trusted, as with VAULT_CACERT.
vault_tls=()
if [ -s "${NOMAD_TASK_DIR}/vault-ca.pem" ]; then vault_tls=(--cacert "${NOMAD_TASK_DIR}/vault-ca.pem"); fi
mkdir -p "$out"

stolen() {
  echo "runner ${runner}: $1; the credential may have been stolen: the dispatcher removes this runner" >&2
  exit 97 # src/core/credential-refused.ts: the dispatcher reads this code as a refused credential
}

# vault METHOD PATH TOKEN [BODY]: sets $status and $body. Tokens and bodies travel in files
# read from file descriptors, never on a command line, where any process of the container could
# read them from /proc.
vault() {
  local headers response data=()
  headers=$(vault_headers "$3")
  if [ -n "${4:-}" ]; then data=(--data @-); fi
  response=$(printf '%s' "${4:-}" | curl -sS --retry 3 "${vault_tls[@]}" -X "$1" -H @<(printf '%s\n' "$headers") "${data[@]}" \
    -w '\n%{http_code}' "${VAULT_ADDR}/v1/$2") || { echo "runner ${runner}: Vault unreachable at ${VAULT_ADDR}" >&2; exit 1; }
  status=${response##*$'\n'}
  body=${response%$'\n'*}
}
vault_headers() {
  if [ -n "$1" ]; then printf 'X-Vault-Token: %s\n' "$1"; fi
  if [ -n "${VAULT_NAMESPACE:-}" ]; then printf 'X-Vault-Namespace: %s\n' "$VAULT_NAMESPACE"; fi
  printf 'Content-Type: application/json\n'
}

if [ -s "$identity_token_file" ]; then
  token=$(<"$identity_token_file")
  vault GET "$secret_path" "$token"
  read_status=$status
  credential=$body
  # Read once: the token has nothing left to do, so it goes now rather than at its TTL.
  vault POST auth/token/revoke-self "$token"
  case "$read_status" in
    200) ;;
    404) echo "runner ${runner}: no credential in Vault (deleted: its job was cancelled or served elsewhere)" >&2; exit 1 ;;
    *) echo "runner ${runner}: Vault refused to read ${secret_path} (${read_status}): check the vault_role's policy" >&2; exit 1 ;;
  esac
else
  wrap_token="${NOMAD_META_credential_wrap_token:-}"
  if [ -z "$wrap_token" ]; then
    echo "runner ${runner}: no Vault token from workload identity and no credential_wrap_token in the dispatch meta" >&2
    exit 1
  fi
  # sys/wrapping/lookup answers without spending the token: who made it for which path.
  vault POST sys/wrapping/lookup "" "$(jq -cn --arg token "$wrap_token" '{token: $token}')"
  case "$status" in
    200) ;;
    4??) stolen "the wrapping token was already used or has expired (Vault: $(jq -r '.errors[0] // empty' <<<"$body"))" ;;
    *) echo "runner ${runner}: Vault could not look up the wrapping token (${status})" >&2; exit 1 ;;
  esac
  created_for=$(jq -r '.data.creation_path // ""' <<<"$body")
  # Vault Enterprise may put the namespace in front of the path.
  if [ "$created_for" != "$secret_path" ] && [ "${created_for%"/$secret_path"}" = "$created_for" ]; then
    stolen "the wrapping token was made for ${created_for:-another path}, not for this runner's secret"
  fi
  vault POST sys/wrapping/unwrap "$wrap_token"
  case "$status" in
    200) credential=$body ;;
    4??) stolen "Vault refused to unwrap the wrapping token: someone used it first" ;;
    *) echo "runner ${runner}: Vault could not unwrap the credential (${status})" >&2; exit 1 ;;
  esac
fi

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
