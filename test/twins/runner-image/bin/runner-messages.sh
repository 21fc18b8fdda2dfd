# shellcheck shell=bash
# The listener's message loop (actions/runner src/Runner.Listener/Runner.cs RunAsync, with
# BrokerMessageListener.GetNextMessageAsync and Program.cs for how errors end the process).
# Sourced by runner-listen.sh, whose state (session, token, settings, worker) it uses.

# Program.cs: AccessDeniedException with ErrorCode 1 (RunnerVersionTooOld) exits 7 only when
# ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE is true (StringUtil.ConvertToBoolean).
version_deprecated_exit() {
  term_error "An error occurred: $1"
  case "${ACTIONS_RUNNER_RETURN_VERSION_DEPRECATED_EXIT_CODE,,}" in
    1 | true | \$true) return 7 ;;
    *) return 1 ;;
  esac
}

# Run-once (ephemeral) runners are done after their job; their local config goes with them.
finish_run_once() {
  delete_session
  # shellcheck source=runner-configure.sh
  source "$BIN_DIR/runner-configure.sh"
  delete_local_config
  return 0
}

message_loop() {
  local status=Online errors=0 erroring="" kind
  while true; do
    if [[ -n "$WORKER_PID" ]] && { [[ -n "$WORKER_DONE" ]] || ! kill -0 "$WORKER_PID" 2>/dev/null; }; then
      job_finished
      [[ "$S_EPHEMERAL" == true ]] && { finish_run_once; return 0; }
      status=Online
    fi
    HTTP_ABORTABLE=1 HTTP_MAX_TIME=100 broker GET "message?sessionId=$SESSION_ID&status=$status&runnerVersion=$RUNNER_VERSION&os=Linux&architecture=X64&disableUpdate=$S_DISABLE_UPDATE"
    [[ -n "$WORKER_DONE" ]] && continue
    if http_ok; then
      errors=0
      [[ -n "$erroring" ]] && term_line "$(utc_now): Runner reconnected."
      erroring=""
      [[ -z "$HTTP_BODY" ]] && continue
      handle_message "$HTTP_BODY"
      local rc=$?
      [[ $rc -eq 255 ]] && continue
      return "$rc"
    fi
    local source
    jget source "$HTTP_BODY" source
    kind=""
    [[ "$source" == actions-broker-listener ]] && jget kind "$HTTP_BODY" errorKind
    case "$kind" in
      RunnerVersionTooOld)
        local refusal
        jget refusal "$HTTP_BODY" errorMessage
        delete_session
        version_deprecated_exit "$refusal"
        return $?
        ;;
      RunnerNotFound)
        # A run-once runner's registration goes when its job ends, and the long poll may see that
        # before the worker's exit is noticed: the JobDispatcher reports the job whatever the
        # session does (Runner.cs awaits RunOnceJobCompleted beside GetNextMessage).
        [[ -n "$WORKER_PID" ]] && job_finished
        term_error "The runner no longer exists on the server. Cleaning up local configuration."
        SESSION_ID=""
        source "$BIN_DIR/runner-configure.sh"
        delete_local_config
        return 0
        ;;
      RunnerSessionInvalid)
        create_session || { term_error "An error occurred: Get next message failed with non-retryable error."; return 1; }
        continue
        ;;
      *) ;; # any other error: by its HTTP status, below
    esac
    if [[ "$HTTP_STATUS" == 401 ]]; then
      # The OAuth token expired: get a new one; a deleted registration ends the runner.
      get_access_token && continue
      term_error "An error occurred: Get next message failed with non-retryable error."
      return 1
    fi
    errors=$((errors + 1))
    local reason=${HTTP_ERROR:-"Failed to get job message. Request to ${S_BROKER}message failed with status: $(status_name "$HTTP_STATUS"). Error message $HTTP_BODY"}
    if [[ $errors -ge 10 ]]; then
      delete_session
      term_error "An error occurred: $reason"
      return 2
    fi
    if [[ -z "$erroring" ]]; then
      term_error "$(utc_now): Runner connect error: $reason. Retrying until reconnected."
      erroring=1
    fi
    if [[ $errors -le 5 ]]; then pause "$(backoff 15 30)"; else pause "$(backoff 30 60)"; fi
  done
}

# 255 = keep listening; anything else is the listener's exit code.
handle_message() {
  local type body
  jget type "$1" messageType
  jget body "$1" body
  case "$type" in
    RunnerRefresh)
      [[ -n "$WORKER_PID" ]] && return 255
      self_update "$body" || return 255
      delete_session
      [[ "$S_EPHEMERAL" == true ]] && return 4
      return 3
      ;;
    RunnerJobRequest)
      [[ -n "$WORKER_PID" ]] && return 255
      start_job "$body"
      ;;
    JobCancellation)
      local cancelled
      jget cancelled "$body" jobId
      if [[ -n "$WORKER_PID" && "$cancelled" == "$JOB_ID" ]]; then
        : >"$JOB_FILE.cancel"
        [[ -e "$JOB_FILE.ready" ]] && kill -USR1 "$WORKER_PID" 2>/dev/null
      fi
      return 255
      ;;
    *)
      trace "Received message with unsupported message type $type."
      return 255
      ;;
  esac
}

# Acknowledge, acquire from the run service, hand the job to Runner.Worker.
start_job() {
  local ref=$1 request service acknowledge error_kind
  jget request "$ref" runner_request_id
  jget service "$ref" run_service_url
  jget acknowledge "$ref" should_acknowledge
  [[ "$service" == */ ]] || service="$service/"
  if [[ "$acknowledge" == true ]]; then
    HTTP_MAX_TIME=5 broker POST "acknowledge?sessionId=$SESSION_ID&status=Online&runnerVersion=$RUNNER_VERSION&os=Linux&architecture=X64" \
      -H "Content-Type: application/json" --data-binary "{\"runnerRequestId\":$(json_str "$request")}"
    jget error_kind "$HTTP_BODY" errorKind
    if [[ "$HTTP_STATUS" == 404 && "$error_kind" == AcknowledgeJobNotFound && "$S_EPHEMERAL" == true ]]; then
      finish_run_once
      return 0
    fi
  fi
  http POST "${service}acquirejob" -H "Authorization: Bearer $ACCESS_TOKEN" -H "Content-Type: application/json" \
    --data-binary "{\"jobMessageId\":$(json_str "$request"),\"runnerOS\":\"Linux\",\"billingOwnerId\":\"\"}"
  if ! http_ok; then
    trace "Skipping message Job. $HTTP_STATUS $HTTP_BODY"
    return 255
  fi
  JOB_FILE=$(mktemp "${TMPDIR:-/tmp}/runner-job.XXXXXX")
  printf '%s' "$HTTP_BODY" >"$JOB_FILE"
  jget JOB_NAME "$HTTP_BODY" jobDisplayName
  jget JOB_ID "$HTTP_BODY" jobId
  term_line "$(utc_now): Running job: $JOB_NAME"
  WORKER_DONE=""
  "$BIN_DIR/Runner.Worker" "$JOB_FILE" "$service" "$ACCESS_TOKEN" "$$" &
  WORKER_PID=$!
  # message_loop's `status` (bash locals are seen by the functions a function calls).
  status=Busy
  return 255
}

# TaskResultUtil: worker exit codes are 100 + TaskResult (0 Succeeded, 2 Failed, 3 Canceled).
# The worker also leaves its code next to the job message: bash's `wait` can come back without
# the status (-1) when the child ended while a trap ran.
job_finished() {
  wait "$WORKER_PID" 2>/dev/null
  local rc result=Failed
  rc=$(<"$JOB_FILE.result") 2>/dev/null
  [[ "$rc" == 100 ]] && result=Succeeded
  [[ "$rc" == 103 ]] && result=Canceled
  term_line "$(utc_now): Job $JOB_NAME completed with result: $result"
  rm -f "$JOB_FILE" "$JOB_FILE.result" "$JOB_FILE.ready" "$JOB_FILE.cancel"
  WORKER_PID=""
  WORKER_DONE=""
  JOB_FILE=""
}

# SelfUpdaterV2: download the package the message names, check its SHA-256, put the new version
# in place, leave update.finished (in the working directory, like the update script) for run-helper.
self_update() {
  local target url sha package
  jget target "$1" target_version
  jget url "$1" download_url
  jget sha "$1" sha256_checksum
  term_line "Runner update in progress, do not shutdown runner."
  term_line "Downloading $target runner"
  mkdir -p "$RUNNER_ROOT/${S_WORK:-_work}/_update"
  package="$RUNNER_ROOT/${S_WORK:-_work}/_update/$(basename "$url")"
  HTTP_SAVE_TO=$package HTTP_MAX_TIME=300 http GET "$url"
  if ! http_ok || [[ "$(sha256sum "$package" | cut -d' ' -f1)" != "$sha" ]]; then
    term_error "Runner update failed: ${HTTP_ERROR:-the package from $url (HTTP $HTTP_STATUS) does not match its SHA-256 checksum}"
    term_line "Runner update process finished."
    return 1
  fi
  term_line "Waiting for current job finish running."
  term_line "Generate and execute update script."
  # A new file (new inode) replaces the listener: the running bash keeps reading the old one.
  sed "s/^RUNNER_VERSION=.*/RUNNER_VERSION=\"$target\"/" "$BIN_DIR/Runner.Listener" >"$BIN_DIR/.Runner.Listener.new" &&
    chmod 755 "$BIN_DIR/.Runner.Listener.new" && mv -f "$BIN_DIR/.Runner.Listener.new" "$BIN_DIR/Runner.Listener"
  touch update.finished
  term_line "Runner will exit shortly for update, should be back online within 10 seconds."
  term_line "Runner update process finished."
}
