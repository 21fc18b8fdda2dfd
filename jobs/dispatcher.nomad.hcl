# nomad-gha-dispatcher itself, as a Nomad service job (Nomad >= 1.7, Vault workload identity).
# Every setting is a variable below; the install is one command with a variables file:
#
#   nomad job run -var-file=dispatcher.vars.hcl jobs/dispatcher.nomad.hcl
#
# (jobs/dispatcher.vars.hcl.example is a typical one, README "Install in one step"). Secrets never
# go into a variable: they would be part of the job spec, which `nomad job inspect` shows to
# anyone who may read the job. They come from Vault (the templates below read
# <vault_kv_mount>/data/<vault_kv_prefix>/config).
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

# ---- The dispatcher ---------------------------------------------------------------------------

variable "image" {
  type        = string
  description = "Dispatcher image, pinned to a version tag or digest (see the Dockerfile)."
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

variable "cpu" {
  type        = number
  description = "CPU for each replica, MHz."
  default     = 200
}

variable "memory" {
  type        = number
  description = "Memory for each replica, MB (idle RSS is about 60 MB, README Performance)."
  default     = 256
}

variable "log_level" {
  type    = string
  default = "info"
}

variable "dispatcher_id" {
  type        = string
  description = "DISPATCHER_ID: names this installation in runner jobs, the dispatch idempotency token and the slot ledger; every replica shares it. Change it only for a second installation in the same cluster."
  default     = "nomad-gha-dispatcher"
}

variable "tunnel" {
  type        = string
  description = "TUNNEL: named (a Cloudflare tunnel with TUNNEL_TOKEN from Vault), or off when something else routes https://HOST/webhook to the http port."
  default     = "named"
}

# ---- GitHub -----------------------------------------------------------------------------------

variable "github_api_url" {
  type        = string
  description = "GITHUB_API_URL: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server."
  default     = "https://api.github.com"
}

variable "github_url" {
  type        = string
  description = "GITHUB_URL: the web URL the runners register against (https://HOST for GitHub Enterprise Server)."
  default     = "https://github.com"
}

variable "webhook_url" {
  type        = string
  description = "The webhook's public URL as configured at GitHub (e.g. https://HOST/webhook). With a PAT, the service finds its organization and repository hooks by it and redelivers their failed deliveries; empty: lost webhooks wait for the paced per-repository scan."
  default     = ""
}

variable "allowed_owners" {
  type        = string
  description = "Comma-separated GitHub owners whose jobs are served; * for any that reach the webhook. Required with a PAT unless allowed_repos is set (a GitHub App's installations are its allow-list)."
  default     = ""
}

variable "allowed_repos" {
  type        = string
  description = "Comma-separated owner/repo served, in addition to allowed_owners."
  default     = ""
}

variable "runner_registration" {
  type        = string
  description = "RUNNER_REGISTRATION: jit, token or auto."
  default     = "jit"
}

variable "runner_scope" {
  type        = string
  description = "RUNNER_SCOPE: repo (a runner registers to the job's repository) or org (to its organization, runner group runner_group_id)."
  default     = "repo"
}

variable "runner_group_id" {
  type    = number
  default = 1
}

variable "runner_name_prefix" {
  type        = string
  description = "RUNNER_NAME_PREFIX of the runners' names at GitHub (and of their Nomad jobs and Vault paths)."
  default     = "nomad-gha"
}

# ---- Limits -----------------------------------------------------------------------------------

variable "max_runners" {
  type        = number
  description = "MAX_RUNNERS across all replicas; 0 = no limit."
  default     = 0
}

variable "max_runners_per_repo" {
  type        = number
  description = "MAX_RUNNERS_PER_REPO; 0 = no limit."
  default     = 0
}

variable "capacity_scope" {
  type        = string
  description = "CAPACITY_SCOPE: cluster (limits hold across replicas, a slot ledger in Nomad Variables) or process."
  default     = "cluster"
}

# ---- Nomad ------------------------------------------------------------------------------------

variable "nomad_addr" {
  type        = string
  description = "Nomad HTTP API for the dispatcher; empty means the agent on the same node (https when nomad_ca_pem is set)."
  default     = ""
}

variable "nomad_region" {
  type    = string
  default = ""
}

variable "nomad_ca_pem" {
  type        = string
  description = "PEM of the CA(s) Nomad's HTTPS certificate is checked against (NOMAD_CACERT); empty: the image's CAs. A client certificate, when Nomad requires one (verify_https_client), comes from Vault (NOMAD_CLIENT_CERT, NOMAD_CLIENT_KEY)."
  default     = ""
}

variable "nomad_tls_server_name" {
  type        = string
  description = "NOMAD_TLS_SERVER_NAME: the name checked in Nomad's certificate, e.g. client.global.nomad when nomad_addr is an IP address."
  default     = ""
}

variable "runner_namespace" {
  type        = string
  description = "Nomad namespace of the runner jobs (policies/nomad-runner-namespace.hcl); the Nomad ACL policies grant exactly this one."
  default     = "github-runners"
}

variable "register_runner_job" {
  type        = string
  description = "\"true\": the dispatcher registers the runner job(s) at start (with NOMAD_REGISTER_TOKEN when in Vault); \"false\": an operator registers them (policies/README.md)."
  default     = "true"
}

# ---- Vault ------------------------------------------------------------------------------------

variable "vault_addr" {
  type        = string
  description = "Vault address as the dispatcher reaches it, e.g. https://vault.example.com:8200."
}

variable "vault_role" {
  type        = string
  description = "Vault JWT auth role for this job's workload identity (policies/vault-jwt-role.json)."
  default     = "nomad-gha-dispatcher"
}

variable "vault_namespace" {
  type        = string
  description = "VAULT_NAMESPACE (Vault Enterprise); empty for none."
  default     = ""
}

variable "vault_kv_mount" {
  type        = string
  description = "KV v2 mount of the dispatcher's config and the runner credentials; the Vault policies name it (policies/README.md)."
  default     = "secret"
}

variable "vault_kv_prefix" {
  type        = string
  description = "Path prefix in that mount: the config secret is <prefix>/config, runner credentials <prefix>/runners/...; the Vault policies name it."
  default     = "nomad-gha-dispatcher"
}

variable "vault_ca_pem" {
  type        = string
  description = "PEM of the CA(s) Vault's certificate is checked against (VAULT_CACERT); the runners use it too unless runner_vault_addr is set. Empty: the image's CAs. A client certificate comes from Vault (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY)."
  default     = ""
}

variable "vault_tls_server_name" {
  type    = string
  default = ""
}

variable "runner_vault_addr" {
  type        = string
  description = "Vault address as runner allocations reach it; empty means vault_addr."
  default     = ""
}

variable "runner_vault_ca_pem" {
  type        = string
  description = "PEM the runners check runner_vault_addr's certificate with (RUNNER_VAULT_CACERT); empty: vault_ca_pem when the runners use vault_addr, else the runner image's CAs."
  default     = ""
}

variable "runner_credential_delivery" {
  type        = string
  description = "RUNNER_CREDENTIAL_DELIVERY: workload-identity (the runner's prestart logs in to Vault itself) or wrap (a single-use wrapping token, for clusters without workload identity)."
  default     = "workload-identity"
}

# ---- Runners ----------------------------------------------------------------------------------
# One class of runners (the default): the labels below, served by the runner job runner_job,
# registered from the image's jobs/github-runner.nomad.hcl with the runner_image, runner_cpu, ...
# variables below (empty or 0: that job's own default). Several classes: runner_classes.

variable "runner_labels" {
  type        = string
  description = "Labels a workflow job must request (runs-on) for the dispatcher to serve it."
  default     = "self-hosted,nomad"
}

variable "runner_job" {
  type    = string
  default = "github-runner"
}

variable "runner_image" {
  type        = string
  description = "Runner image, e.g. ghcr.io/actions/actions-runner:2.336.0; empty: the bundled runner job's default. GitHub refuses runners more than 30 days behind the newest actions/runner release: bump it and re-run this job (README Upgrade)."
  default     = ""
}

variable "runner_cpu" {
  type        = number
  description = "CPU of each runner, MHz; 0: the runner job's default (2000)."
  default     = 0
}

variable "runner_memory" {
  type        = number
  description = "Memory of each runner, MB; 0: the runner job's default (4096)."
  default     = 0
}

variable "runner_node_pool" {
  type        = string
  description = "Node pool of the runners; empty: the runner job's default (default)."
  default     = ""
}

variable "runner_datacenters" {
  type        = list(string)
  description = "Datacenters of the runners; empty: the runner job's default ([\"*\"])."
  default     = []
}

variable "runner_classes" {
  type        = string
  description = "Runner classes (YAML, README Runner classes), rendered to RUNNER_CLASSES_FILE; empty: the one class above. With classes, runner_labels, runner_job and runner_image/cpu/memory/node_pool/datacenters do not apply: each class's job and job_vars say it (job_file: /app/jobs/github-runner.nomad.hcl is the bundled job)."
  default     = ""

  # The text is rendered by Nomad's template, which would read {{ as the start of an action.
  validation {
    condition     = length(split("{{", var.runner_classes)) == 1
    error_message = "runner_classes must not contain \"{{\"."
  }
}

# ---- Everything else --------------------------------------------------------------------------

variable "extra_env" {
  type        = map(string)
  description = "Rare settings, as environment variables (README Configuration): WEBHOOK_BODY_LIMIT, GITHUB_WEBHOOK_SECRET_ALLOW_SHORT, GITHUB_POINTS_PER_MINUTE, GITHUB_MAX_CONCURRENT, RUNNER_ALLOW_ORG_REGISTRATION_TOKEN, RECONCILE_INTERVAL, RECONCILE_GRACE, RUNNER_RETENTION, VAULT_WRAP_TTL, VAULT_REQUIRE_AUDIT, NOMAD_SKIP_VERIFY, VAULT_SKIP_VERIFY, NOMAD_CAPATH, VAULT_CAPATH, NOMAD_RUNNER_JOB_FILE, TUNNEL_CONFIG, CLOUDFLARED_BIN. Anything a variable above sets, and any secret, is refused."
  default     = {}

  validation {
    condition = length(setintersection(keys(var.extra_env), [
      "WEBHOOK_BODY_LIMIT", "GITHUB_WEBHOOK_SECRET_ALLOW_SHORT", "GITHUB_POINTS_PER_MINUTE", "GITHUB_MAX_CONCURRENT",
      "RUNNER_ALLOW_ORG_REGISTRATION_TOKEN", "RECONCILE_INTERVAL", "RECONCILE_GRACE", "RUNNER_RETENTION", "VAULT_WRAP_TTL",
      "VAULT_REQUIRE_AUDIT", "NOMAD_SKIP_VERIFY", "VAULT_SKIP_VERIFY", "NOMAD_CAPATH", "VAULT_CAPATH", "NOMAD_RUNNER_JOB_FILE",
      "TUNNEL_CONFIG", "CLOUDFLARED_BIN",
    ])) == length(var.extra_env)
    error_message = "extra_env may set only the settings its description lists: the others have variables of their own, and secrets come from Vault."
  }
}

locals {
  # The config secret the templates read (policies/vault-dispatcher-config.policy.hcl grants it).
  config_secret = "${var.vault_kv_mount}/data/${var.vault_kv_prefix}/config"

  # The task's environment: every setting the service reads that is not a secret. Empty values
  # are the service's "unset". Files rendered below are read at /local and /secrets.
  env = {
    TUNNEL = var.tunnel
    # All interfaces inside the container; see the network block for why. The ports are the
    # network block's "to" ports.
    HOST         = "0.0.0.0"
    PORT         = "8080"
    METRICS_PORT = "9102"
    LOG_LEVEL    = var.log_level
    # Shared by all replicas on purpose: it seeds the dispatch idempotency token.
    DISPATCHER_ID = var.dispatcher_id

    GITHUB_API_URL      = var.github_api_url
    GITHUB_URL          = var.github_url
    WEBHOOK_URL         = var.webhook_url
    ALLOWED_OWNERS      = var.allowed_owners
    ALLOWED_REPOS       = var.allowed_repos
    RUNNER_REGISTRATION = var.runner_registration
    RUNNER_SCOPE        = var.runner_scope
    RUNNER_GROUP_ID     = "${var.runner_group_id}"
    RUNNER_NAME_PREFIX  = var.runner_name_prefix

    MAX_RUNNERS          = "${var.max_runners}"
    MAX_RUNNERS_PER_REPO = "${var.max_runners_per_repo}"
    CAPACITY_SCOPE       = var.capacity_scope

    # The Nomad agent on this node unless nomad_addr says otherwise, with the NOMAD_TOKEN from
    # Vault (a client token for policies/nomad-dispatcher.policy.hcl) and, if the service
    # registers the runner job, NOMAD_REGISTER_TOKEN (policies/nomad-runner-job-admin.policy.hcl).
    # An alternative without a long-lived token is Nomad's Task API (unix://${NOMAD_SECRETS_DIR}/api.sock
    # with the workload identity), which the dispatcher's HTTP client does not speak today.
    NOMAD_ADDR                = var.nomad_addr != "" ? var.nomad_addr : var.nomad_ca_pem != "" ? "https://${attr.unique.network.ip-address}:4646" : "http://${attr.unique.network.ip-address}:4646"
    NOMAD_REGION              = var.nomad_region
    NOMAD_CACERT              = var.nomad_ca_pem != "" ? "/local/nomad-ca.pem" : ""
    NOMAD_TLS_SERVER_NAME     = var.nomad_tls_server_name
    NOMAD_NAMESPACE           = var.runner_namespace
    NOMAD_REGISTER_RUNNER_JOB = var.register_runner_job

    VAULT_ADDR                 = var.vault_addr
    VAULT_NAMESPACE            = var.vault_namespace
    VAULT_CACERT               = var.vault_ca_pem != "" ? "/local/vault-ca.pem" : ""
    VAULT_TLS_SERVER_NAME      = var.vault_tls_server_name
    VAULT_KV_MOUNT             = var.vault_kv_mount
    VAULT_KV_PREFIX            = var.vault_kv_prefix
    RUNNER_VAULT_ADDR          = var.runner_vault_addr != "" ? var.runner_vault_addr : var.vault_addr
    RUNNER_VAULT_CACERT        = var.runner_vault_ca_pem != "" ? "/local/runner-vault-ca.pem" : ""
    RUNNER_CREDENTIAL_DELIVERY = var.runner_credential_delivery

    # One class from these, or the classes file; the service refuses both at once.
    RUNNER_LABELS              = var.runner_classes == "" ? var.runner_labels : ""
    NOMAD_RUNNER_JOB           = var.runner_classes == "" ? var.runner_job : ""
    NOMAD_RUNNER_JOB_VARS_FILE = var.runner_classes == "" ? "/local/runner.vars.hcl" : ""
    RUNNER_CLASSES_FILE        = var.runner_classes == "" ? "" : "/local/runner-classes.yaml"
  }

  # Files rendered from variables: not secret, but read by the dispatcher (as the image's user).
  # An empty one leaves its environment variable above empty, and the service reads no file.
  files = {
    "local/nomad-ca.pem"          = var.nomad_ca_pem
    "local/vault-ca.pem"          = var.vault_ca_pem
    "local/runner-vault-ca.pem"   = var.runner_vault_ca_pem
    "local/runner-classes.yaml"   = var.runner_classes
  }

  # Secret files, each from a key of the config secret (when present): path -> key.
  secret_files = {
    # A GitHub App key stays a file (GITHUB_APP_PRIVATE_KEY_FILE) rather than an environment
    # variable, so it does not show up in the environment of anything the process spawns.
    "secrets/github-app.pem"        = "GITHUB_APP_PRIVATE_KEY"
    "secrets/nomad-client.pem"      = "NOMAD_CLIENT_CERT"
    "secrets/nomad-client-key.pem"  = "NOMAD_CLIENT_KEY"
    "secrets/vault-client.pem"      = "VAULT_CLIENT_CERT"
    "secrets/vault-client-key.pem"  = "VAULT_CLIENT_KEY"
  }
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
        # by name instead of arriving as the string "null". The PEM keys become files (below),
        # their variables the files' paths.
        data = <<-EOT
          {{- with secret "${local.config_secret}" }}
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
          {{- with .Data.data.NOMAD_CLIENT_CERT }}
          NOMAD_CLIENT_CERT="/secrets/nomad-client.pem"
          {{- end }}
          {{- with .Data.data.NOMAD_CLIENT_KEY }}
          NOMAD_CLIENT_KEY="/secrets/nomad-client-key.pem"
          {{- end }}
          {{- with .Data.data.VAULT_CLIENT_CERT }}
          VAULT_CLIENT_CERT="/secrets/vault-client.pem"
          {{- end }}
          {{- with .Data.data.VAULT_CLIENT_KEY }}
          VAULT_CLIENT_KEY="/secrets/vault-client-key.pem"
          {{- end }}
          {{- end }}
        EOT
      }

      # The secret files (local.secret_files), each from its key of the config secret. The
      # dispatcher reads them as the image's user, `node` (uid and gid 1000 in the official node
      # image the Dockerfile builds on): without uid/gid Nomad renders them owned by root, and
      # 0400 would then keep the dispatcher out (EACCES).
      dynamic "template" {
        for_each = local.secret_files
        content {
          destination = template.key
          change_mode = "restart"
          perms       = "0400"
          uid         = 1000
          gid         = 1000
          data        = "{{- with secret \"${local.config_secret}\" -}}{{- with .Data.data.${template.value} }}{{ . }}{{ end -}}{{- end -}}"
        }
      }

      # Files from variables (local.files): the runner classes and the CA certificates. Every
      # one is rendered (a template's text may not be empty, hence the newline); the service
      # reads only those whose variable is set. A new value needs `nomad job run` again, which
      # rolls the replicas one at a time behind their health checks.
      dynamic "template" {
        for_each = local.files
        content {
          destination = template.key
          change_mode = "restart"
          perms       = "0400"
          uid         = 1000
          gid         = 1000
          data        = "${template.value}\n"
        }
      }

      # The one runner class's job variables (NOMAD_RUNNER_JOB_VARS_FILE): what the service
      # passes when it registers jobs/github-runner.nomad.hcl. Only what is set; the rest keeps
      # the runner job's defaults.
      template {
        destination = "local/runner.vars.hcl"
        change_mode = "restart"
        perms       = "0400"
        uid         = 1000
        gid         = 1000
        data = join("", [
          "# From jobs/dispatcher.nomad.hcl: the runner_* variables that are set.\n",
          var.runner_image != "" ? "image = ${jsonencode(var.runner_image)}\n" : "",
          var.runner_cpu != 0 ? "cpu = ${var.runner_cpu}\n" : "",
          var.runner_memory != 0 ? "memory = ${var.runner_memory}\n" : "",
          var.runner_node_pool != "" ? "node_pool = ${jsonencode(var.runner_node_pool)}\n" : "",
          length(var.runner_datacenters) != 0 ? "datacenters = ${jsonencode(var.runner_datacenters)}\n" : "",
        ])
      }

      # Settings (local.env) after the rare ones: a setting with a variable of its own is set by
      # that variable only.
      env = merge(var.extra_env, local.env)

      resources {
        cpu    = var.cpu
        memory = var.memory
      }
    }
  }
}
