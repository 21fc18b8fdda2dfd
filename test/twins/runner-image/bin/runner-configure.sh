# shellcheck shell=bash
# `config.sh` and `config.sh remove` of the stand-in listener, following actions/runner
# src/Runner.Listener/Configuration/ConfigurationManager.cs (ConfigureAsync, UnconfigureAsync,
# GetTenantCredential) and src/Runner.Common/RunnerDotcomServer.cs (the runner-admin calls, each
# tried 3 times unless the answer is 404). Settings are written like IOUtil.SaveObject does:
# indented camelCase JSON in the runner root; the key file is chmod 600 (RSAFileKeyManager).
# The key is a random secret standing for the RSA key pair (the image has no openssl); it is sent
# as `public_key` and proves the runner at the OAuth token exchange (see runner-listen.sh).

# The REST base for a GitHub URL. github.com (and *.ghe.com) use api.<host>; any other host is
# GitHub Enterprise Server with the API under /api/v3 (ConfigurationManager.GetTenantCredential,
# UrlUtil.IsHostedServer). The real runner builds it from UriBuilder.Host, which drops a
# non-default port; the stand-in keeps the port, because the twin listens on a random port while
# a real GHES serves on 443.
api_base() {
  local url=$1 scheme rest hostport host
  scheme=${url%%://*}
  rest=${url#*://}
  hostport=${rest%%/*}
  host=${hostport%%:*}
  host=${host,,}
  local force=${GITHUB_ACTIONS_RUNNER_FORCE_GHES,,}
  if [[ "$force" != "true" && "$force" != "1" ]] &&
    [[ "$host" == github.com || "$host" == www.github.com || "$host" == github.localhost || "$host" == *.ghe.localhost || "$host" == *.ghe.com ]]; then
    echo "$scheme://api.$host"
  else
    echo "$scheme://$hostport/api/v3"
  fi
}

# RunnerDotcomServer.GetEntityUrl: {api}/orgs/<org>/actions or {api}/repos/<owner>/<repo>/actions.
entity_url() {
  local url=${1%/} path
  path=${url#*://}
  path=${path#*/}
  IFS=/ read -r -a parts <<<"$path"
  if [[ ${#parts[@]} -eq 1 ]]; then
    echo "$(api_base "$1")/orgs/${parts[0]}/actions"
  elif [[ ${#parts[@]} -eq 2 && "${parts[0],,}" == enterprises ]]; then
    echo "$(api_base "$1")/${parts[0]}/${parts[1]}/actions"
  elif [[ ${#parts[@]} -eq 2 ]]; then
    echo "$(api_base "$1")/repos/${parts[0]}/${parts[1]}/actions"
  else
    return 1
  fi
}

# RetryRequest with `Authorization: RemoteAuth <token>`; KIND is how the runner names the method
# in its error line ("Post", "Get", "Delete"; "POST" for runner-registration).
admin_request() {
  local kind=$1 url=$2 token=$3 body=${4-} attempt=0
  while true; do
    attempt=$((attempt + 1))
    if [[ -n "$body" ]]; then
      http "${kind^^}" "$url" -H "Authorization: RemoteAuth $token" -H "Content-Type: application/json" --data-binary "$body"
    else
      http "${kind^^}" "$url" -H "Authorization: RemoteAuth $token"
    fi
    http_ok && return 0
    if [[ "$HTTP_STATUS" == 000 ]]; then
      FAIL_MESSAGE=${HTTP_ERROR:-"Connection refused"}
    else
      term_error "Http response code: $(status_name "$HTTP_STATUS") from '$kind $url' (Request Id: $HTTP_REQUEST_ID)"
      term_error "$HTTP_BODY"
      FAIL_MESSAGE="Response status code does not indicate success: $HTTP_STATUS ($(status_reason "$HTTP_STATUS"))."
    fi
    [[ $attempt -ge 3 || "$HTTP_STATUS" == 404 ]] && return 1
    pause "$(backoff 1 5)"
  done
}

# GetTenantCredential: validates the token for the URL's scope; after three failed attempts
# other than 404 the real code returns null and fails on it.
tenant_credential() {
  local url=$1 token=$2 event=$3
  local body
  body=$(jq -cn --arg url "$url" --arg event "$event" '{url: $url, runner_event: $event}')
  if ! admin_request POST "$(api_base "$url")/actions/runner-registration" "$token" "$body"; then
    [[ "$HTTP_STATUS" == 404 ]] || FAIL_MESSAGE="Object reference not set to an instance of an object."
    return 1
  fi
  TENANT_URL=$(jq -r '.url // empty' <<<"$HTTP_BODY")
}

write_json() {
  local file=$1
  shift
  rm -f "$file"
  jq -n "$@" >"$file"
}

configure_runner() {
  trap 'term_line "Exiting..."; [[ -n "$HTTP_PID" ]] && kill "$HTTP_PID" 2>/dev/null; exit 1' INT
  trap '[[ -n "$HTTP_PID" ]] && kill "$HTTP_PID" 2>/dev/null; exit 143' TERM
  if [[ -f "$RUNNER_ROOT/.runner" ]]; then
    term_error "Cannot configure the runner because it is already configured. To reconfigure the runner, run 'config.cmd remove' or './config.sh remove' first."
    return 1
  fi
  configure_steps && return 0
  term_error "$FAIL_MESSAGE"
  return 1
}

configure_steps() {
  term_section "Authentication"
  required_arg url || return 1
  local url=${ARG[url]}
  required_arg token || return 1
  local token=${ARG[token]}
  tenant_credential "$url" "$token" register || return 1
  # A GHES instance's Actions service must live on the instance's own host.
  local tenant_host=${TENANT_URL#*://} github_host=${url#*://}
  tenant_host=${tenant_host%%/*}
  github_host=${github_host%%/*}
  if [[ "$tenant_host" != "$github_host" && "$tenant_host" != *".$github_host" && "$(api_base "$url")" == */api/v3 ]]; then
    FAIL_MESSAGE="GitHub Actions is not properly configured in GHES. GHES url: $url, Actions url: $TENANT_URL."
    return 1
  fi
  term_line ""
  term_success "Connected to GitHub"

  local secret entity
  secret=$(head -c 48 /dev/urandom | base64 -w0)
  term_section "Runner Registration"
  entity=$(entity_url "$url") || { FAIL_MESSAGE="'$url' should point to an org or enterprise."; return 1; }
  admin_request Get "$entity/runner-groups" "$token" || return 1
  local group_name=${ARG[runnergroup]:-} pool
  if [[ -z "$group_name" ]]; then
    pool=$(jq -c '[.runner_groups[] | select(.default == true)][0] // empty' <<<"$HTTP_BODY")
  else
    pool=$(jq -c --arg n "$group_name" '[.runner_groups[] | select((.name | ascii_downcase) == ($n | ascii_downcase) and (.is_hosted | not))][0] // empty' <<<"$HTTP_BODY")
  fi
  if [[ -z "$pool" ]]; then
    FAIL_MESSAGE=${group_name:+"Could not find any self-hosted runner group named \"$group_name\"."}
    FAIL_MESSAGE=${FAIL_MESSAGE:-"Could not find any self-hosted runner groups. Contact support."}
    return 1
  fi
  local name=${ARG[name]:-$(hostname)}
  term_line ""
  # Labels: the system ones unless --no-default-labels, then --labels (deduplicated, any case).
  local labels='[]'
  if [[ -z "${FLAG[no-default-labels]:-}" ]]; then
    labels='[{"name":"self-hosted","type":"system"},{"name":"Linux","type":"system"},{"name":"X64","type":"system"}]'
  elif [[ -z "${ARG[labels]//,/}" ]]; then
    FAIL_MESSAGE="Disabling default labels via --no-default-labels without specifying --labels is not supported"
    return 1
  fi
  labels=$(jq -c --arg csv "${ARG[labels]:-}" '. + ($csv | split(",") | map(select(. != "")) | reduce .[] as $l ([]; if any(.[]; ascii_downcase == ($l | ascii_downcase)) then . else . + [$l] end) | map({name: ., type: "user"}))' <<<"$labels")
  term_line ""
  admin_request Get "$entity/runners?name=$(jq -rn --arg n "$name" '$n | @uri')" "$token" || return 1
  local existing replace=false
  existing=$(jq -r '.runners[0].id // empty' <<<"$HTTP_BODY")
  if [[ -n "$existing" ]]; then
    term_line "A runner exists with the same name"
    if [[ -z "${FLAG[replace]:-}" ]]; then
      FAIL_MESSAGE="A runner exists with the same name $name."
      return 1
    fi
    replace=true
  fi
  local register
  register=$(jq -cn --arg url "$url" --argjson group "$(jq '.id' <<<"$pool")" --arg name "$name" --arg version "$RUNNER_VERSION" \
    --argjson disable "$([[ -n "${FLAG[disableupdate]:-}" ]] && echo true || echo false)" \
    --argjson ephemeral "$([[ -n "${FLAG[ephemeral]:-}" ]] && echo true || echo false)" \
    --argjson labels "$labels" --arg key "$secret" --argjson replace "$replace" --arg id "$existing" \
    '{url: $url, group_id: $group, name: $name, version: $version, updates_disabled: $disable, ephemeral: $ephemeral, labels: $labels, public_key: $key}
     + (if $replace then {runner_id: ($id | tonumber), replace: true} else {} end)')
  admin_request Post "$(api_base "$url")/actions/runners/register" "$token" "$register" || return 1
  if [[ "$replace" == true ]]; then term_success "Successfully replaced the runner"; else term_success "Runner successfully added"; fi
  local runner=$HTTP_BODY

  # shellcheck disable=SC2016 # a jq program: its $names are jq variables
  write_json "$RUNNER_ROOT/.credentials" --arg id "$(jq -r '.authorization.client_id' <<<"$runner")" --arg auth "$(jq -r '.authorization.authorization_url' <<<"$runner")" \
    '{scheme: "OAuth", data: {clientId: $id, authorizationUrl: $auth, requireFipsCryptography: "False"}}'
  # shellcheck disable=SC2016 # a jq program: its $names are jq variables
  write_json "$RUNNER_ROOT/.credentials_rsaparams" --arg d "$secret" --arg m "$(head -c 256 /dev/urandom | base64 -w0)" '{d: $d, exponent: "AQAB", modulus: $m}'
  chmod 600 "$RUNNER_ROOT/.credentials_rsaparams"
  term_section "Runner settings"
  # shellcheck disable=SC2016 # a jq program: its $names are jq variables
  write_json "$RUNNER_ROOT/.runner" --argjson id "$(jq '.id' <<<"$runner")" --arg name "$name" --argjson pool "$(jq '.id' <<<"$pool")" \
    --arg poolName "$(jq -r '.name' <<<"$pool")" --argjson disable "$(jq '.updates_disabled' <<<"$register")" --argjson ephemeral "$(jq '.ephemeral' <<<"$register")" \
    --arg server "$TENANT_URL" --arg serverV2 "$(jq -r '.authorization.server_url' <<<"$runner")" --arg github "$url" --arg work "${ARG[work]:-_work}" \
    '{agentId: $id, agentName: $name, poolId: $pool, poolName: $poolName, serverUrl: $server, gitHubUrl: $github, workFolder: $work, useV2Flow: true, useRunnerAdminFlow: true, serverUrlV2: $serverV2}
     + (if $disable then {disableUpdate: true} else {} end) + (if $ephemeral then {ephemeral: true} else {} end)'
  term_line ""
  term_success "Settings Saved."
  term_line ""
}

# ConfigurationManager.DeleteLocalRunnerConfig.
delete_local_config() {
  if [[ -f "$RUNNER_ROOT/.credentials" ]]; then
    rm -f "$RUNNER_ROOT/.credentials" "$RUNNER_ROOT/.credentials_rsaparams"
    term_success "Removed .credentials"
  else
    term_line "Does not exist. Skipping Removing .credentials"
  fi
  if [[ -f "$RUNNER_ROOT/.runner" ]]; then
    rm -f "$RUNNER_ROOT/.runner"
    term_success "Removed .runner"
  else
    term_line "Does not exist. Skipping Removing .runner"
  fi
}

remove_runner() {
  trap 'term_line "Exiting..."; [[ -n "$HTTP_PID" ]] && kill "$HTTP_PID" 2>/dev/null; exit 1' INT
  term_section "Runner removal"
  if [[ ! -f "$RUNNER_ROOT/.runner" || ! -f "$RUNNER_ROOT/.credentials" ]]; then
    term_line "Cannot connect to server, because config files are missing. Skipping removing runner from the server."
    delete_local_config
    term_line ""
    return 0
  fi
  if ! required_arg token; then
    term_error "$FAIL_MESSAGE"
    return 1
  fi
  local github_url agent_id entity
  github_url=$(json_get "$RUNNER_ROOT/.runner" gitHubUrl)
  agent_id=$(json_get "$RUNNER_ROOT/.runner" agentId)
  FAIL_MESSAGE="'$github_url' should point to an org or enterprise."
  if ! entity=$(entity_url "$github_url") || ! admin_request Delete "$entity/runners/$agent_id" "${ARG[token]}"; then
    term_error "Failed: Removing runner from the server"
    term_error "$FAIL_MESSAGE"
    return 1
  fi
  term_line ""
  term_success "Runner removed successfully"
  delete_local_config
  term_line ""
}
