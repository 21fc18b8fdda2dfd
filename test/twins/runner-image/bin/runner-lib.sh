# shellcheck shell=bash
# Shared by the stand-in's bin/Runner.Listener and bin/Runner.Worker (see bin/Runner.Listener for
# what this image stands for). Terminal output follows actions/runner src/Runner.Common/Terminal.cs:
# errors on stderr, "√ " before success messages, "# Section" headers.

term_line() { printf '%s\n' "$*"; }
term_success() { printf '√ %s\n' "$*"; }
term_error() { printf '%s\n' "$*" >&2; }
term_section() { printf '\n# %s\n\n' "$*"; }
# Builtin clock (no `date` process per line: the stand-in runs hundreds of runners per test suite).
utc_now() { TZ=UTC printf '%(%Y-%m-%d %H:%M:%S)TZ\n' -1; }

# Trace lines go to stdout when ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT is set (the official image sets
# it), to _diag/ otherwise, like the runner's HostContext tracing.
trace() {
  local line
  line="[$(utc_now) INFO ${TRACE_COMPONENT:-Runner}] $*"
  if [[ -n "${ACTIONS_RUNNER_PRINT_LOG_TO_STDOUT:-}" ]]; then
    printf '%s\n' "$line"
  else
    mkdir -p "$RUNNER_ROOT/_diag" 2>/dev/null && printf '%s\n' "$line" >>"$RUNNER_ROOT/_diag/${TRACE_COMPONENT:-Runner}_$$.log"
  fi
}

# json_field JSON KEY: a top-level value, key matched case-insensitively (the runner reads its
# settings files with Newtonsoft.Json, which ignores case); empty when absent. json_get reads a file.
json_field() {
  jq -r --arg k "$2" 'first(to_entries[] | select((.key | ascii_downcase) == ($k | ascii_downcase)) | .value | if . == null then empty elif type == "object" or type == "array" then tojson else . end) // empty' <<<"$1" 2>/dev/null
}
json_get() { [[ -r "$1" ]] && json_field "$(<"$1")" "$2"; }

# jget VAR JSON KEY: VAR = the scalar value of KEY in JSON (strings unescaped, numbers and booleans
# as written, missing or null empty), without a process: jq 1.6, what Debian ships, spends some
# 20 ms starting, which the hundreds of runners a test suite starts would pay on every field. The
# keys the stand-in reads are unique in their documents (the twin's answers, the settings files),
# so the first `"KEY":` is the one; anything nested or unusual goes through jq instead.
jget() {
  local -n __out=$1
  local key=${3##*.} re
  re="\"${key}\"[[:space:]]*:[[:space:]]*(\"(([^\"\\]|\\\\.)*)\"|(-?[0-9][0-9.eE+-]*|true|false))"
  __out=""
  # Keys match whatever their case, as Newtonsoft.Json reads the runner's settings files.
  local matched=0
  shopt -q nocasematch || { shopt -s nocasematch; matched=1; }
  [[ "$2" =~ $re ]]
  local found=$?
  ((matched)) && shopt -u nocasematch
  ((found == 0)) || return 0
  if [[ -n "${BASH_REMATCH[4]}" ]]; then
    __out=${BASH_REMATCH[4]}
    return 0
  fi
  local v=${BASH_REMATCH[2]}
  if [[ "$v" == *\\* ]]; then
    v=${v//\\\"/\"}
    v=${v//\\\//\/}
    v=${v//\\n/$'\n'}
    v=${v//\\t/$'\t'}
    v=${v//\\\\/\\}
  fi
  __out=$v
}

# A JSON string literal for VALUE (for request bodies built with printf).
json_str() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  s=${s//$'\n'/\\n}
  s=${s//$'\r'/\\r}
  s=${s//$'\t'/\\t}
  printf '"%s"' "$s"
}

# .NET's HttpStatusCode names, as the runner prints them ("Http response code: NotFound ...").
status_name() {
  case "$1" in
    200) echo OK ;; 201) echo Created ;; 204) echo NoContent ;; 400) echo BadRequest ;; 401) echo Unauthorized ;;
    403) echo Forbidden ;; 404) echo NotFound ;; 409) echo Conflict ;; 422) echo UnprocessableEntity ;;
    429) echo TooManyRequests ;; 500) echo InternalServerError ;; 502) echo BadGateway ;; 503) echo ServiceUnavailable ;;
    *) echo "$1" ;;
  esac
}

# The reason phrases in HttpResponseMessage.EnsureSuccessStatusCode's message.
status_reason() {
  case "$1" in
    400) echo "Bad Request" ;; 401) echo "Unauthorized" ;; 403) echo "Forbidden" ;; 404) echo "Not Found" ;;
    409) echo "Conflict" ;; 422) echo "Unprocessable Entity" ;; 429) echo "Too Many Requests" ;;
    500) echo "Internal Server Error" ;; 502) echo "Bad Gateway" ;; 503) echo "Service Unavailable" ;; *) echo "" ;;
  esac
}

# http METHOD URL [curl args...]: one request; sets HTTP_STATUS (000 when nothing came back),
# HTTP_BODY, HTTP_ERROR and HTTP_REQUEST_ID. curl runs in the background and is waited for, so a
# trapped signal interrupts the wait at once (bash runs traps only between foreground commands);
# the trap handler kills $HTTP_PID.
HTTP_PID=""
HTTP_TMP=""
http() {
  local method=$1 url=$2
  shift 2
  # One scratch directory per process, files reused per request: no mktemp/cat/rm processes.
  if [[ -z "$HTTP_TMP" ]]; then HTTP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/runner-http.XXXXXX") || return 1; fi
  local out="$HTTP_TMP/r"
  : >"$out.body"
  curl -sS -X "$method" -o "$out.body" -D "$out.headers" -w '%{http_code}' --max-time "${HTTP_MAX_TIME:-100}" \
    -H "User-Agent: GitHubActionsRunner-linux-x64/${RUNNER_VERSION}" "$@" "$url" >"$out" 2>"$out.err" &
  HTTP_PID=$!
  # A poll started just as the worker reported its end (the trap found no curl to cut) ends now.
  [[ -n "${HTTP_ABORTABLE:-}" && -n "${WORKER_DONE:-}" ]] && kill "$HTTP_PID" 2>/dev/null
  wait "$HTTP_PID"
  HTTP_PID=""
  HTTP_STATUS=$(<"$out")
  [[ -n "$HTTP_STATUS" ]] || HTTP_STATUS=000
  # shellcheck disable=SC2034 # an output, read by the scripts that source this file
  HTTP_BODY=$(<"$out.body")
  # HTTP_SAVE_TO keeps the exact bytes (command substitution drops trailing newlines).
  [[ -n "${HTTP_SAVE_TO:-}" ]] && cp "$out.body" "$HTTP_SAVE_TO"
  # shellcheck disable=SC2034 # an output, read by the scripts that source this file
  HTTP_ERROR=$(<"$out.err")
  HTTP_REQUEST_ID=""
  local name value
  # shellcheck disable=SC2034 # HTTP_REQUEST_ID is an output, read by the scripts that source this file
  while IFS=': ' read -r name value; do
    [[ "${name,,}" == "x-github-request-id" ]] && HTTP_REQUEST_ID=${value%$'\r'}
  done <"$out.headers"
}
http_ok() { [[ "$HTTP_STATUS" =~ ^2 ]]; }

# A sleep a trapped signal interrupts.
pause() {
  sleep "$1" &
  HTTP_PID=$!
  wait "$HTTP_PID"
  HTTP_PID=""
}

# A random whole number of seconds in [lo, hi] (BackoffTimerHelper.GetRandomBackoff).
backoff() { echo $(($1 + RANDOM % ($2 - $1 + 1))); }
