# The runner jobs' namespace: `nomad namespace apply policies/nomad-runner-namespace.hcl`.
#
# Whoever holds submit-job here (the run-time token on Nomad 1.x, the registration token) can
# submit jobs in it; the namespace narrows what those jobs may be. Fields as `nomad namespace
# apply` reads them (hashicorp/nomad command/namespace_apply.go parseNamespaceSpecImpl) into
# structs.Namespace (nomad/structs/structs.go).
#
# capabilities: enforced on every Job.Register by jobNamespaceConstraintCheckHook
# (nomad/job_endpoint_validators.go, Nomad CE and Enterprise): a task with another driver is
# refused with `used task driver "exec" is not allowed in namespace "github-runners"`. The runner
# job's three tasks use docker; raw_exec, exec and the like would run on the host.
#
# node_pool_config is honoured by Nomad Enterprise only (Community Edition's
# jobNodePoolMutatingHook in nomad/job_endpoint_hook_node_pool_ce.go ignores it). On Enterprise,
# add e.g. `node_pool_config { default = "github-runners" allowed = ["github-runners"] }` to keep
# runner jobs on nodes of their own.

name        = "github-runners"
description = "Ephemeral GitHub Actions runners dispatched by nomad-gha-dispatcher"

capabilities {
  enabled_task_drivers = ["docker"]
}
