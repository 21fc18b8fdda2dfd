# shellcheck shell=bash
# `Runner.Listener run [--jitconfig X]` of the stand-in, after actions/runner:
#   src/Runner.Listener/Runner.cs             --jitconfig files, "Runner is not configured.", RunAsync's
#                                             message loop, run-once (ephemeral) exit, cleanup after a 404
#   src/Runner.Listener/BrokerMessageListener.cs   session creation and its retries, message polling
#                                             and its backoff (15-30 s, then 30-60 s, fatal after 10)
#   src/Sdk/WebApi/WebApi/BrokerHttpClient.cs  broker calls and BrokerError kinds
#   src/Runner.Listener/SelfUpdaterV2.cs       RunnerRefresh: download, check SHA-256, exit 3/4
#   src/Runner.Listener/JobDispatcher.cs       "Running job: ..." / "Job ... completed with result: ..."
# The job itself runs in bin/Runner.Worker. Signals: INT (run.sh forwards the container's INT/TERM
# as INT) and TERM shut the runner down like Ctrl-C / unloading: a running job is stopped and
# reported failed, the session is deleted, exit 0.

SESSION_ID=""
ACCESS_TOKEN=""
WORKER_PID=""
WORKER_DONE=""
JOB_FILE=""

b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# Runner.cs: the JIT config is base64 JSON of file name -> base64 content, written to the root.
decode_jitconfig() {
  local json name content
  if ! json=$(base64 -d <<<"$1" 2>/dev/null) || ! jq -e 'type == "object"' >/dev/null 2>&1 <<<"$json"; then
    term_error "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two padding characters, or an illegal character among the padding characters."
    return 1
  fi
  while IFS=$'\t' read -r name content; do
    base64 -d <<<"$content" >"$RUNNER_ROOT/$name" || return 1
  done < <(jq -r 'to_entries[] | [.key, .value] | @tsv' <<<"$json")
}

load_settings() {
  local settings credentials
  settings=$(<"$RUNNER_ROOT/.runner")
  credentials=$(<"$RUNNER_ROOT/.credentials")
  jget S_AGENT_ID "$settings" agentId
  jget S_NAME "$settings" agentName
  jget S_BROKER "$settings" serverUrlV2
  jget S_DISABLE_UPDATE "$settings" disableUpdate
  jget S_EPHEMERAL "$settings" ephemeral
  jget S_WORK "$settings" workFolder
  jget C_CLIENT_ID "$credentials" clientId
  jget C_AUTH_URL "$credentials" authorizationUrl
  jget K_SECRET "$(<"$RUNNER_ROOT/.credentials_rsaparams")" d
  [[ "$S_DISABLE_UPDATE" == true ]] || S_DISABLE_UPDATE=false
  [[ "$S_EPHEMERAL" == true ]] || S_EPHEMERAL=false
  [[ "$S_BROKER" == */ ]] || S_BROKER="$S_BROKER/"
}

# OAuth client credentials with a client assertion; 0 ok, 2 registration deleted (invalid_client), 1 other.
get_access_token() {
  local now header payload
  printf -v now "%(%s)T" -1
  header=$(printf '{"alg":"twin-sha256","typ":"JWT"}' | b64url)
  payload=$(printf '{"sub":%s,"iss":%s,"aud":%s,"iat":%d,"nbf":%d,"exp":%d}' "$(json_str "$C_CLIENT_ID")" "$(json_str "$C_CLIENT_ID")" "$(json_str "$C_AUTH_URL")" "$now" "$now" $((now + 300)) | b64url)
  local signature
  signature=$(printf '%s' "$header.$payload.$K_SECRET" | sha256sum | cut -d' ' -f1)
  http POST "$C_AUTH_URL" --data-urlencode grant_type=client_credentials \
    --data-urlencode client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    --data-urlencode "client_assertion=$header.$payload.$signature"
  if http_ok; then
    jget ACCESS_TOKEN "$HTTP_BODY" access_token
    return 0
  fi
  local error
  jget error "$HTTP_BODY" error
  [[ "$error" == invalid_client ]] && return 2
  FAIL_MESSAGE=${HTTP_ERROR:-"VssOAuthTokenRequestException: $HTTP_STATUS $HTTP_BODY"}
  return 1
}

broker() { # METHOD PATH [curl args...]
  local method=$1 path=$2
  shift 2
  http "$method" "$S_BROKER$path" -H "Authorization: Bearer $ACCESS_TOKEN" "$@"
}

# CreateSessionAsync: 0 success, 1 failure, 5 session conflict (given up after 4 minutes).
create_session() {
  local conflicts=0 erroring="" token_rc body
  while true; do
    get_access_token
    token_rc=$?
    if [[ $token_rc -eq 2 ]]; then
      term_error "Failed to create a session. The runner registration has been deleted from the server, please re-configure. Runner registrations are automatically deleted for runners that have not connected to the service recently."
      return 1
    fi
    if [[ $token_rc -eq 0 ]]; then
      body=$(printf '{"sessionId":"00000000-0000-0000-0000-000000000000","ownerName":%s,"agent":{"id":%d,"name":%s,"version":%s,"osDescription":"Linux"},"useFipsEncryption":false}' \
        "$(json_str "${HOSTNAME:-runner} (PID: $$)")" "${S_AGENT_ID:-0}" "$(json_str "$S_NAME")" "$(json_str "$RUNNER_VERSION")")
      broker POST session -H "Content-Type: application/json" --data-binary "$body"
      if http_ok; then
        jget SESSION_ID "$HTTP_BODY" sessionId
        term_line ""
        term_success "Connected to GitHub"
        term_line ""
        [[ -n "$erroring" ]] && term_line "$(utc_now): Runner reconnected."
        return 0
      fi
      local message
      jget message "$HTTP_BODY" message
      message=${HTTP_ERROR:-$message}
      if [[ "$HTTP_STATUS" == 409 ]]; then
        term_error "A session for this runner already exists."
        conflicts=$((conflicts + 1))
        if [[ $((conflicts * 30)) -ge 240 ]]; then
          term_error "Stop retry on SessionConflictException after retried for 240 seconds."
          term_error "Failed to create session. $message"
          return 5
        fi
      elif [[ "$HTTP_STATUS" == 401 || "$HTTP_STATUS" == 403 ]]; then
        term_error "Failed to create session. $message"
        return 1
      fi
      FAIL_MESSAGE="Failed to create broker session: $message"
    fi
    if [[ -z "$erroring" ]]; then
      term_error "$(utc_now): Runner connect error: $FAIL_MESSAGE. Retrying until reconnected."
      erroring=1
    fi
    pause 30
  done
}

delete_session() {
  [[ -n "$SESSION_ID" ]] || return 0
  HTTP_MAX_TIME=30 broker DELETE session
  SESSION_ID=""
}

on_shutdown() {
  trap '' INT TERM USR1
  [[ "$1" == INT ]] && term_line "Exiting..."
  [[ -n "$HTTP_PID" ]] && kill "$HTTP_PID" 2>/dev/null
  if [[ -n "$WORKER_PID" ]] && kill -0 "$WORKER_PID" 2>/dev/null; then
    kill -TERM "$WORKER_PID" 2>/dev/null
    wait "$WORKER_PID"
  fi
  # Anything still running in the background (a request started as the signal came) goes too.
  local stragglers
  stragglers=$(jobs -p)
  # shellcheck disable=SC2086 # one pid per word
  [[ -n "$stragglers" ]] && kill $stragglers 2>/dev/null
  delete_session
  exit 0
}

run_runner() {
  trap 'on_shutdown INT' INT
  trap 'on_shutdown TERM' TERM
  # Runner.Worker signals the end of its job; the poll in flight is cut short to notice it.
  trap 'WORKER_DONE=1; [[ -n "$HTTP_PID" ]] && kill "$HTTP_PID" 2>/dev/null' USR1
  if [[ -n "${ARG[jitconfig]:-}" ]]; then decode_jitconfig "${ARG[jitconfig]}" || return 1; fi
  if [[ ! -f "$RUNNER_ROOT/.runner" ]]; then
    term_error "Runner is not configured."
    term_line "Commands: ./config.sh (configure), ./config.sh remove, ./run.sh [--jitconfig <config>]"
    return 1
  fi
  load_settings
  local work="$RUNNER_ROOT/${S_WORK:-_work}"
  if ! mkdir -p "$work" 2>/dev/null || [[ ! -w "$work" || ! -x "$work" ]]; then
    term_error "Fail to create and validate runner's work directory '$work'."
    return 1
  fi
  create_session
  local rc=$?
  [[ $rc -eq 0 ]] || return "$rc"
  term_line "Current runner version: '$RUNNER_VERSION'"
  term_line "$(utc_now): Listening for Jobs"
  # shellcheck source=runner-messages.sh
  source "$BIN_DIR/runner-messages.sh"
  message_loop
}
