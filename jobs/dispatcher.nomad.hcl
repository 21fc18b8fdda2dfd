# nomad-gha-dispatcher itself, as a Nomad service job (Nomad >= 1.7, Vault workload identity).
#
#   nomad job run -var image=ghcr.io/acme/nomad-gha-dispatcher:0.1.0 \
#     -var vault_addr=https://vault.example.com:8200 jobs/dispatcher.nomad.hcl
#
# Before the first run, do the steps in policies/README.md: the runner namespace, Nomad ACL
# policies + tokens (runner jobs go to var.runner_namespace, github-runners), Vault
# policies, the JWT auth role for this job's workload identity, a Vault audit device, and the
# dispatcher's secrets at secret/nomad-gha-dispatcher/config.
#
# Two replicas (count = 2) both keep a tunnel connector up; Cloudflare spreads webhooks over
# them. Handling is idempotent across replicas: a redelivered or duplicated webhook dispatches
# the runner job with the same Nomad idempotency token (derived from DISPATCHER_ID, which every
# replica must share), and runner credentials are keyed by runner name in Vault.

variable "image" {
  type        = string
  description = "Dispatcher image, pinned to a version tag or digest (see the Dockerfile)."
}

variable "vault_addr" {
  type        = string
  description = "Vault address as the dispatcher reaches it, e.g. https://vault.example.com:8200."
}

variable "runner_vault_addr" {
  type        = string
  description = "Vault address as runner allocations reach it; empty means vault_addr."
  default     = ""
}

variable "nomad_addr" {
  type        = string
  description = "Nomad HTTP API for the dispatcher; empty means the agent on the same node."
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

variable "count" {
  type        = number
  description = "Replicas. Two keep webhooks flowing through a deploy or a node loss."
  default     = 2
}

variable "vault_role" {
  type        = string
  description = "Vault JWT auth role for this job's workload identity (policies/vault-jwt-role.json)."
  default     = "nomad-gha-dispatcher"
}

variable "runner_namespace" {
  type        = string
  description = "Nomad namespace of the runner jobs (policies/nomad-runner-namespace.hcl); the Nomad ACL policies grant exactly this one."
  default     = "github-runners"
}

variable "register_runner_job" {
  type        = string
  description = "\"true\": the dispatcher registers the runner job at start (with NOMAD_REGISTER_TOKEN when in Vault); \"false\": an operator registers it (policies/README.md)."
  default     = "true"
}

variable "runner_job" {
  type    = string
  default = "github-runner"
}

variable "runner_labels" {
  type        = string
  description = "Labels a workflow job must request (runs-on) for the dispatcher to serve it."
  default     = "self-hosted,nomad"
}

variable "allowed_owners" {
  type        = string
  description = "Comma-separated GitHub owners whose jobs are served; * for any that reach the webhook. Required with a PAT (a GitHub App's installations are its allow-list)."
  default     = ""
}

variable "webhook_url" {
  type        = string
  description = "The webhook's public URL as configured at GitHub (e.g. https://HOST/webhook). With a PAT, the service finds its organization and repository hooks by it and redelivers their failed deliveries; empty: lost webhooks wait for the paced per-repository scan."
  default     = ""
}

variable "log_level" {
  type    = string
  default = "info"
}

job "nomad-gha-dispatcher" {
  type        = "service"
  datacenters = var.datacenters
  node_pool   = var.node_pool

  update {
    max_parallel      = 1
    health_check      = "checks"
    min_healthy_time  = "20s"
    healthy_deadline  = "3m"
    progress_deadline = "10m"
    auto_revert       = true
  }

  group "dispatcher" {
    count = var.count

    # Replicas on different nodes, or a node loss takes both connectors down at once.
    spread {
      attribute = "${node.unique.id}"
    }

    network {
      # Both ports map to dynamic host ports, never static ones. The HTTP server listens on
      # 0.0.0.0 inside the container (HOST below) rather than loopback: cloudflared runs in the
      # same container and would be happy with loopback, but Nomad's own health checks come
      # from the client agent through the mapped port. Nothing public is exposed: webhooks
      # arrive only through the tunnel, and a request on the mapped port still needs a valid
      # GitHub signature. Use host_network to pin these to a private interface if you want.
      port "http" {
        to = 8080
      }
      port "metrics" {
        to = 9102
      }
    }

    # Liveness: the process answers. Failing it restarts the task.
    service {
      provider = "nomad"
      name     = "nomad-gha-dispatcher"
      port     = "http"
      tags     = ["http"]

      check {
        name     = "alive"
        type     = "http"
        path     = "/healthz"
        interval = "10s"
        timeout  = "3s"

        check_restart {
          limit = 3
          grace = "30s"
        }
      }

      # Readiness: tunnel connected, Nomad and Vault reachable. A dependency outage is not
      # fixed by restarting us, so this check gates deployments (health_check = "checks") and
      # never restarts the task; warnings do not fail an update.
      check {
        name      = "ready"
        type      = "http"
        path      = "/readyz"
        interval  = "10s"
        timeout   = "5s"
        on_update = "ignore_warnings"
      }
    }

    service {
      provider = "nomad"
      name     = "nomad-gha-dispatcher-metrics"
      port     = "metrics"
      tags     = ["metrics", "prometheus"]

      check {
        type     = "tcp"
        interval = "30s"
        timeout  = "3s"
      }
    }

    restart {
      attempts = 3
      interval = "5m"
      delay    = "15s"
      mode     = "delay"
    }

    reschedule {
      delay          = "30s"
      delay_function = "exponential"
      max_delay      = "10m"
      unlimited      = true
    }

    task "dispatcher" {
      driver = "docker"

      config {
        image = var.image
        ports = ["http", "metrics"]
        # tini as PID 1: forwards SIGTERM to node and reaps cloudflared if it ever orphans.
        init = true
      }

      # SIGTERM starts a drain (src/shutdown.ts): cloudflared unregisters from the edge (the
      # other replica takes the traffic) and lets requests in flight through it finish within
      # its 10 s grace period, then the webhooks and dispatches in flight finish, each step
      # within a budget; the whole drain takes at most 26 s. Nomad clamps kill_timeout to the
      # client's max_kill_timeout, 30 s by default, so a longer value here would not be honoured:
      # the drain is sized to fit 30 s with margin, and kill_timeout asks for exactly that.
      kill_signal  = "SIGTERM"
      kill_timeout = "30s"

      # Nomad >= 1.7 workload identity for Vault: Nomad logs in to Vault's JWT auth method
      # (path jwt-nomad) with this identity and the role below, renews the resulting periodic
      # token, writes it to secrets/vault_token and exports it as VAULT_TOKEN. The dispatcher
      # uses that token for its runtime calls (runner credentials, wrapping, audit check) and
      # the templates below use it to read the dispatcher's own configuration.
      identity {
        name = "vault_default"
        aud  = ["vault.io"]
        ttl  = "1h"
      }

      vault {
        role        = var.vault_role
        env         = true
        change_mode = "restart"
      }

      # Everything secret comes from Vault KV v2 into the task's secrets/ directory (tmpfs,
      # not readable by other tasks, never in the job spec or `nomad job inspect`). env = true
      # turns the file into environment variables; a changed secret restarts the task.
      # toJSON quotes every value, so any character (and a PEM's newlines) survives.
      # Nomad's client renders templates owned by root unless uid/gid are set. This one stays
      # root's (0400): the client itself reads it to build the task's environment, and the
      # dispatcher process, which runs as the image's user, never needs to open it.
      template {
        destination = "secrets/dispatcher.env"
        env         = true
        change_mode = "restart"
        perms       = "0400"
        splay       = "10s"
        # Each key only when present: a missing secret then fails the dispatcher's config check
        # by name instead of arriving as the string "null".
        data = <<-EOT
          {{- with secret "secret/data/nomad-gha-dispatcher/config" }}
          {{- with .Data.data.GITHUB_WEBHOOK_SECRET }}
          GITHUB_WEBHOOK_SECRET={{ . | toJSON }}
          {{- end }}
          {{- with .Data.data.TUNNEL_TOKEN }}
          TUNNEL_TOKEN={{ . | toJSON }}
          {{- end }}
          {{- with .Data.data.NOMAD_TOKEN }}
          NOMAD_TOKEN={{ . | toJSON }}
          {{- end }}
          {{- with .Data.data.NOMAD_REGISTER_TOKEN }}
          NOMAD_REGISTER_TOKEN={{ . | toJSON }}
          {{- end }}
          {{- with .Data.data.GITHUB_TOKEN }}
          GITHUB_TOKEN={{ . | toJSON }}
          {{- end }}
          {{- with .Data.data.GITHUB_APP_ID }}
          GITHUB_APP_ID={{ . | toJSON }}
          GITHUB_APP_PRIVATE_KEY_FILE="/secrets/github-app.pem"
          {{- end }}
          {{- end }}
        EOT
      }

      # A GitHub App key stays a file (GITHUB_APP_PRIVATE_KEY_FILE) rather than an environment
      # variable, so it does not show up in the environment of anything the process spawns.
      # The dispatcher reads it as the image's user, `node` (uid and gid 1000 in the official
      # node image the Dockerfile builds on): without uid/gid Nomad renders it owned by root,
      # and 0400 would then keep the dispatcher out (EACCES).
      template {
        destination = "secrets/github-app.pem"
        change_mode = "restart"
        perms       = "0400"
        uid         = 1000
        gid         = 1000
        data        = <<-EOT
          {{- with secret "secret/data/nomad-gha-dispatcher/config" -}}
          {{- with .Data.data.GITHUB_APP_PRIVATE_KEY }}{{ . }}{{ end -}}
          {{- end -}}
        EOT
      }

      env {
        TUNNEL = "named"
        # All interfaces inside the container; see the network block for why.
        HOST         = "0.0.0.0"
        PORT         = "8080"
        METRICS_PORT = "9102"
        LOG_LEVEL    = var.log_level

        # The Nomad agent on this node, with the NOMAD_TOKEN from Vault (a client token for
        # policies/nomad-dispatcher.policy.hcl) and, if the service registers the runner job,
        # NOMAD_REGISTER_TOKEN (policies/nomad-runner-job-admin.policy.hcl). An alternative without a long-lived token is
        # Nomad's Task API (unix://${NOMAD_SECRETS_DIR}/api.sock with the workload identity),
        # which the dispatcher's HTTP client does not speak today.
        NOMAD_ADDR                = var.nomad_addr != "" ? var.nomad_addr : "http://${attr.unique.network.ip-address}:4646"
        NOMAD_NAMESPACE           = var.runner_namespace
        NOMAD_RUNNER_JOB          = var.runner_job
        NOMAD_REGISTER_RUNNER_JOB = var.register_runner_job

        VAULT_ADDR        = var.vault_addr
        RUNNER_VAULT_ADDR = var.runner_vault_addr != "" ? var.runner_vault_addr : var.vault_addr
        # Must match the paths in policies/vault-dispatcher.policy.hcl.
        VAULT_KV_MOUNT  = "secret"
        VAULT_KV_PREFIX = "nomad-gha-dispatcher"

        RUNNER_LABELS  = var.runner_labels
        ALLOWED_OWNERS = var.allowed_owners
        WEBHOOK_URL    = var.webhook_url
        # Shared by all replicas on purpose: it seeds the dispatch idempotency token.
        DISPATCHER_ID = "nomad-gha-dispatcher"
      }

      resources {
        cpu    = 200
        memory = 256
      }
    }
  }
}
