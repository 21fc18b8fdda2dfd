# Nomad ACL policy for nomad-gha-dispatcher's run-time NOMAD_TOKEN (Nomad 1.7 - 1.10).
#
# One namespace only: the runner jobs' own, github-runners (policies/nomad-runner-namespace.hcl;
# the dispatcher runs with NOMAD_NAMESPACE=github-runners). Nothing on any other namespace, so
# the token cannot touch the dispatcher's own job or anything else on the cluster, and no node,
# agent, operator, quota, plugin or host volume rules. `nomad-gha-dispatcher doctor` warns when
# the token reaches more than this.
#
# What each call needs, from hashicorp/nomad:
#   read-job      the runner job and its dispatched children: Job.GetJob (nomad/job_endpoint.go),
#                 AllowNsOp(ns, read-job); the same capability covers their allocations and
#                 evaluations (Job.Allocations, Alloc.GetAlloc, Eval.GetEval)
#   list-jobs     find dispatched runner jobs when reconciling: Job.List, AllowNsOp(ns, list-jobs)
#   dispatch-job  one runner per queued workflow job: Job.Dispatch, AllowNsOp(ns, dispatch-job)
#   submit-job    ONLY because stopping and purging a runner job needs it: Job.Deregister
#                 checks AllowNsOpAnyOf(ns, submit-job, purge-job[, deregister-job]), and
#                 purge-job/deregister-job exist only from Nomad 2.0 (acl/policy.go). On
#                 Nomad 1.x there is no narrower capability for stopping a job. On Nomad >= 2.0
#                 use policies/nomad-dispatcher.nomad-2.policy.hcl instead, which has none.
#
# What submit-job also allows, and why it is bounded: Job.Register (doRegister checks
# AllowNsOpAnyOf(ns, submit-job, register-job)) and /v1/jobs/parse (command/agent/
# job_endpoint.go JobsParseRequest accepts parse-job or submit-job). So this token can still
# submit jobs, in github-runners only; that namespace admits docker tasks only
# (nomad-runner-namespace.hcl), so what it submits runs in a container like the runners.
#
# Registering or updating the runner job is not this token's job: run `nomad job run` as an
# operator (NOMAD_REGISTER_RUNNER_JOB=false), or give the service NOMAD_REGISTER_TOKEN made from
# policies/nomad-runner-job-admin.policy.hcl. read-logs, read-fs, alloc-exec, alloc-lifecycle
# and parse-job are deliberately absent: the dispatcher never looks inside an allocation.

namespace "github-runners" {
  capabilities = ["read-job", "list-jobs", "dispatch-job", "submit-job"]

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
