# Vault policy "nomad-gha-runner": what a runner allocation's prestart task may do with the Vault
# token Nomad obtains for it with its workload identity (JWT auth role nomad-gha-runner,
# policies/vault-runner-jwt-role.json). Nothing else in a runner allocation gets a Vault token.
#
# Read this runner job's credentials, nothing else: the path is templated on the identity's
# nomad_namespace and nomad_job_id claims (mapped onto the entity alias by the role's
# claim_mappings). For a dispatched runner, nomad_job_id is the parameterized parent job's ID
# (hashicorp/nomad nomad/structs/structs.go, Job.GetIDforWorkloadIdentity), so each runner job
# (each runner class) reads only its own runners' secrets; no claim names the dispatched child,
# which is why the secret's name is the runner name the dispatch meta carries.
#
# Replace AUTH_METHOD_ACCESSOR with the accessor of the jwt-nomad auth mount before writing it:
#   accessor=$(vault auth list -format=json | jq -r '."jwt-nomad/".accessor')
#   sed "s/AUTH_METHOD_ACCESSOR/$accessor/g" policies/vault-runner.policy.hcl | vault policy write nomad-gha-runner -
# Paths assume VAULT_KV_MOUNT=secret and VAULT_KV_PREFIX=nomad-gha-dispatcher (the defaults).
path "secret/data/nomad-gha-dispatcher/runners/{{identity.entity.aliases.AUTH_METHOD_ACCESSOR.metadata.nomad_namespace}}/{{identity.entity.aliases.AUTH_METHOD_ACCESSOR.metadata.nomad_job_id}}/*" {
  capabilities = ["read"]
}

# The prestart revokes its token as soon as it has read the credential (auth/token/revoke-self,
# granted by Vault's built-in default policy, which this role keeps).
