# Nomad ACL policy for registering or updating the runner job (NOMAD_REGISTER_TOKEN, or the
# operator who runs `nomad job run jobs/github-runner.nomad.hcl`).
#
# Kept apart from the run-time token so that the long-running service need not hold it: give
# it to the service only if it should register the job when it starts, else keep it with the
# operator (NOMAD_REGISTER_RUNNER_JOB=false).
#
#   parse-job   POST /v1/jobs/parse (hashicorp/nomad command/agent/job_endpoint.go
#               JobsParseRequest: parse-job or submit-job)
#   read-job    Job.GetJob (nomad/job_endpoint.go): is the registered job already this one?
#   submit-job  Job.Register -> doRegister (nomad/job_endpoint.go): AllowNsOpAnyOf(ns,
#               submit-job, register-job); on Nomad >= 2.0 register-job is enough.
#
#   node, node_pool read
#               Node.List and NodePool.List/Nodes (nomad/node_endpoint.go, node_pool_endpoint.go):
#               at start the service checks that a runner class's node pool has a ready node that
#               fits its job and allows its docker options (a dind sidecar is privileged), so a
#               cluster that forbids them refuses the start instead of failing each runner. Read
#               only, and only at start: the run-time token has no node rule (doctor warns if it does).
#
# Jobs: the runner namespace only, as for the run-time token.

namespace "github-runners" {
  capabilities = ["parse-job", "read-job", "submit-job"]
}

node {
  policy = "read"
}

node_pool "*" {
  policy = "read"
}
