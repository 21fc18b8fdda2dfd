# Nomad ACL policy for nomad-gha-dispatcher's NOMAD_TOKEN.
#
# One namespace only: the one the runner job lives in (NOMAD_NAMESPACE, "default" unless you
# changed it; a dedicated namespace such as "github-runners" is better, since submit-job lets
# the holder run any job in it). Nothing on other namespaces, and no node, agent, operator,
# quota, plugin or host volume rules: the dispatcher never needs them.
#
#   read-job      read the runner job and its dispatched children's status and allocations
#   list-jobs     find dispatched runner jobs when reconciling
#   dispatch-job  start one runner per queued workflow job
#   submit-job    register/update the runner job at start (NOMAD_REGISTER_RUNNER_JOB=true)
#                 and stop runner jobs that are no longer needed
#   parse-job     turn jobs/github-runner.nomad.hcl into JSON through the Nomad API
#
# read-logs, alloc-exec, alloc-lifecycle and the like are deliberately absent: the dispatcher
# never looks inside an allocation. If you register the runner job yourself
# (`nomad job run jobs/github-runner.nomad.hcl`, NOMAD_REGISTER_RUNNER_JOB=false) you may drop
# parse-job, but keep submit-job for stopping runner jobs.

namespace "default" {
  capabilities = ["read-job", "list-jobs", "dispatch-job", "submit-job", "parse-job"]
}
