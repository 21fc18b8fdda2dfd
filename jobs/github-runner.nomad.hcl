# Ephemeral GitHub Actions runner, dispatched once per queued workflow job by
# nomad-gha-dispatcher. Registered by the dispatcher at start (it overrides the job ID with
# NOMAD_RUNNER_JOB, passes the variables below and inlines the scripts that `file()` reads), or
# by hand from this directory: `nomad job run -var vault_addr=https://vault:8200 github-runner.nomad.hcl`.
#
# Credential flow: the dispatcher stores the runner credential in Vault KV v2 and puts only a
# single-use, short-TTL response-wrapping token in the dispatch meta. The prestart task unwraps it
# (Vault's audit log shows the unwrap) and configures the runner; the main task gets only the
# runner's own settings files. Nothing secret is ever part of the job spec, its meta or a log line.
#
# The tasks run as the image's user (runner, uid 1001, in the official image): the runner refuses
# to run as root. Their scripts are rendered by Nomad's template, owned by root unless uid/gid are
# given, so they are world-readable (0644): they hold nothing secret.

variable "vault_addr" {
  type        = string
  description = "Vault address as the runner allocations reach it (not 127.0.0.1: that is the container itself)."
}

variable "vault_namespace" {
  type        = string
  description = "Vault Enterprise namespace of the runner secrets; empty for none."
  default     = ""
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "node_pool" {
  type    = string
  default = "default"
}

# The one line to change when actions/runner releases: GitHub stops assigning jobs to runners
# more than 30 days behind its newest release (`nomad-gha-dispatcher doctor` warns before then).
variable "image" {
  type        = string
  description = "Runner image: bash, curl, jq and the runner in its working directory (the official image has all)."
  default     = "ghcr.io/actions/actions-runner:2.336.0"
}

variable "cpu" {
  type    = number
  default = 2000
}

variable "memory" {
  type    = number
  default = 4096
}

job "github-runner" {
  type        = "batch"
  datacenters = var.datacenters
  node_pool   = var.node_pool

  meta {
    managed_by = "nomad-gha-dispatcher"
  }

  parameterized {
    payload       = "forbidden"
    meta_required = [
      "github_repo",
      "github_job_id",
      "github_run_id",
      "runner_name",
      "runner_labels",
      "runner_scope_url",
      "credential_wrap_token",
    ]
    meta_optional = ["dispatcher_id"]
  }

  group "runner" {
    # One job, one runner, one credential: a failed runner is replaced by the dispatcher's
    # reconciler with a fresh credential, never by Nomad rerunning a task whose credential is
    # spent. That covers the node too: without this, an allocation lost with its node would be
    # replaced (disconnect.replace defaults to true) and meet a spent credential.
    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    disconnect {
      replace = false
    }

    ephemeral_disk {
      size = 300
    }

    task "configure-runner" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        image      = var.image
        entrypoint = ["/bin/bash"]
        args       = ["${NOMAD_TASK_DIR}/configure-runner.sh"]
      }

      env {
        VAULT_ADDR      = var.vault_addr
        VAULT_NAMESPACE = var.vault_namespace
      }

      template {
        destination = "local/configure-runner.sh"
        data        = file("runner/configure-runner.sh")
        perms       = "0644"
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    task "runner" {
      driver = "docker"

      config {
        image      = var.image
        entrypoint = ["/bin/bash"]
        args       = ["${NOMAD_TASK_DIR}/run-runner.sh"]
      }

      template {
        destination = "local/run-runner.sh"
        data        = file("runner/run-runner.sh")
        perms       = "0644"
      }

      resources {
        cpu    = var.cpu
        memory = var.memory
      }
    }

    # The runner's settings files leave the shared directory when the main task starts; this
    # catches an allocation that never got that far. The runner's registration is the
    # dispatcher's to remove (a remove token kept here would expire, and workflow code could read it).
    task "scrub" {
      driver = "docker"

      lifecycle {
        hook = "poststop"
      }

      config {
        image      = var.image
        entrypoint = ["/bin/rm"]
        args       = ["-rf", "${NOMAD_ALLOC_DIR}/runner"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
