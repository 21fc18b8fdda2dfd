# Nomad ACL policy for nomad-gha-dispatcher's run-time NOMAD_TOKEN on Nomad >= 2.0.
#
# The same grants as nomad-dispatcher.policy.hcl, but stopping uses purge-job instead of
# submit-job. Nomad 2.0 split submit-job into finer capabilities (hashicorp/nomad
# acl/policy.go: register-job, deregister-job, purge-job, ...; PR #27287), and Job.Deregister
# (nomad/job_endpoint.go) checks AllowNsOpAnyOf(ns, submit-job, purge-job), plus
# deregister-job when not purging: purge-job alone allows both the stop and the purge the
# dispatcher makes. Without submit-job or register-job this token cannot register any job
# (Job.Register -> doRegister) nor parse one (JobsParseRequest needs parse-job or submit-job):
# the runner job is registered by an operator or with NOMAD_REGISTER_TOKEN.
#
# Nomad 1.x rejects this file (purge-job is not a capability there): use the other one.

namespace "github-runners" {
  capabilities = ["read-job", "list-jobs", "dispatch-job", "purge-job"]

  # The replicas' shared capacity ledger and heartbeats (CAPACITY_SCOPE=cluster): Nomad Variables
  # under this deployment's own path only (acl/policy.go VariablesPolicy; each operation checks
  # acl.ACL.AllowVariableOperation on the variable's path, nomad/variables_endpoint.go):
  # read (GET /v1/var, and a CAS conflict's body), write (PUT, with ?cas), list (GET /v1/vars,
  # the holders' heartbeats) and destroy (DELETE: a stopped replica's heartbeat).
  variables {
    path "nomad-gha-dispatcher/*" {
      capabilities = ["read", "write", "list", "destroy"]
    }
  }
}
