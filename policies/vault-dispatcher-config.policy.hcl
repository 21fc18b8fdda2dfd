# Vault policy "nomad-gha-dispatcher-config": read the dispatcher's own secrets.
#
# Used by the template blocks of jobs/dispatcher.nomad.hcl (with the task's workload-identity
# token) to render GITHUB_WEBHOOK_SECRET, TUNNEL_TOKEN, NOMAD_TOKEN and GITHUB_TOKEN or the
# GitHub App ID and key into the task's secrets/ directory. Read only: the dispatcher never
# writes its own configuration.
path "secret/data/nomad-gha-dispatcher/config" {
  capabilities = ["read"]
}
