# Vault policy "nomad-gha-dispatcher": what the dispatcher does at run time.
#
# Paths assume VAULT_KV_MOUNT=secret and VAULT_KV_PREFIX=nomad-gha-dispatcher (the defaults).
# Runner credentials live at <mount>/data/<prefix>/runners/<runner-name> (KV v2); change every
# path below if you change either setting.

# Store a runner's credential (check-and-set, so a late write of a superseded attempt is refused),
# read which registration it belongs to when resuming a half-done provisioning, read it back
# response-wrapped for the runner job, and delete it
# when the runner is gone. Wrapping needs no extra rule: it is the X-Vault-Wrap-TTL header on
# this read, and the runner unwraps with the single-use wrapping token itself
# (sys/wrapping/unwrap is open to any token holder by design).
path "secret/data/nomad-gha-dispatcher/runners/*" {
  capabilities = ["create", "read", "update", "delete"]
}

# Remove a credential with all its versions and metadata (delete on metadata), set its
# metadata such as max_versions or delete_version_after (update), and look at one (read).
path "secret/metadata/nomad-gha-dispatcher/runners/*" {
  capabilities = ["read", "list", "update", "delete"]
}

# List stored credentials when reconciling, to clean up after runners that never started.
path "secret/metadata/nomad-gha-dispatcher/runners" {
  capabilities = ["list"]
}

# Startup audit check: the dispatcher refuses to hand out credentials when no audit device is
# enabled, because the audit log is what shows who unwrapped a runner credential. Listing
# audit devices is a root-protected endpoint, hence sudo. It cannot change audit devices.
# With VAULT_REQUIRE_AUDIT=false the check is skipped and this rule can go.
path "sys/audit" {
  capabilities = ["read", "sudo"]
}

# Startup self-check: confirm this token holds the capabilities above before serving, so a
# policy mistake fails at start rather than at the first webhook.
path "sys/capabilities-self" {
  capabilities = ["update"]
}

# Let the dispatcher (and `nomad-gha-dispatcher doctor`) inspect its own token: TTL, policies,
# renewability. The default policy grants this too, unless the role sets token_no_default_policy.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
