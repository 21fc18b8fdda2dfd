# Ephemeral GitHub Actions runner, dispatched once per queued workflow job by
# nomad-gha-dispatcher. Registered by the dispatcher at start (it overrides the job ID with
# NOMAD_RUNNER_JOB, passes the variables below and inlines the scripts that `file()` reads), or
# by hand from this directory: `nomad job run -var vault_addr=https://vault:8200 github-runner.nomad.hcl`.
#
# Credential flow: the dispatcher stores the runner credential in Vault KV v2 under
# <kv mount>/data/<kv prefix>/runners/<namespace>/<this job's ID>/<runner name>. The prestart task
# logs in to Vault with its Nomad workload identity (the `vault` block: JWT auth role `vault_role`,
# whose policy is templated on the identity's namespace and job claims), reads that one secret
# (Vault's audit log shows the read), revokes its own token and configures the runner; the main
# task gets only the runner's own settings files. Nothing Vault would accept is ever part of the
# job spec, its meta, a payload, an environment variable or a log line.
#
# Clusters without workload identity set vault_role = "" (the dispatcher's
# RUNNER_CREDENTIAL_DELIVERY=wrap): the dispatch meta then carries a single-use, short-TTL
# response-wrapping token, which the prestart checks (sys/wrapping/lookup: made for this runner's
# secret, not used yet) before it unwraps it. Anyone who can read the job can see that token, so
# a failed check means it was stolen or spent: the prestart exits 97 and the dispatcher deletes the
# runner at GitHub and raises an alarm.
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

variable "vault_ca_pem" {
  type        = string
  description = "PEM of the CA(s) Vault's TLS certificate is checked against (curl --cacert); empty for the image's own CAs. The dispatcher passes RUNNER_VAULT_CACERT, or VAULT_CACERT/VAULT_CAPATH when the runners use VAULT_ADDR."
  default     = ""
}

variable "vault_role" {
  type        = string
  description = "Vault JWT auth role the prestart logs in with (Nomad workload identity); empty for the wrapping-token fallback."
  default     = "nomad-gha-runner"
}

variable "vault_kv_mount" {
  type        = string
  description = "KV v2 mount of the runner secrets (the dispatcher's VAULT_KV_MOUNT)."
  default     = "secret"
}

variable "vault_kv_prefix" {
  type        = string
  description = "Path prefix of the runner secrets in that mount (the dispatcher's VAULT_KV_PREFIX)."
  default     = "nomad-gha-dispatcher"
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

# Docker for the workflow's steps (`container:`, `services:`, `docker build`). "none" renders the job
# exactly as without this variable. "dind": a docker:dind sidecar task with its own daemon,
# privileged, TLS between runner and daemon, its storage in its own task directory; its clients
# need `plugin "docker" { config { allow_privileged = true } }` and bridge networking (CNI
# plugins). "host-socket": the client's own daemon through /var/run/docker.sock, which makes every
# workflow root on the client; its clients need `volumes { enabled = true }`. README: "Container jobs".
variable "docker" {
  type        = string
  description = "Docker for the workflow's steps: none, dind (a privileged docker:dind sidecar) or host-socket (the client's daemon: root on the client for every workflow)."
  default     = "none"

  validation {
    condition     = contains(["none", "dind", "host-socket"], var.docker)
    error_message = "The docker variable must be \"none\", \"dind\" or \"host-socket\"."
  }
}

variable "dind_image" {
  type        = string
  description = "Image of the docker = \"dind\" sidecar: docker-library's docker:<version>-dind, pinned."
  default     = "docker:29.4.3-dind"
}

# The daemon's containers (a `container:` job's steps, its services, a build) run in the docker
# task's cgroup: these are their resources, on top of the runner's cpu and memory.
variable "dind_cpu" {
  type    = number
  default = 2000
}

variable "dind_memory" {
  type    = number
  default = 4096
}

# The daemon's images and containers live in the docker task's own directory: this much disk is
# reserved for the allocation (ephemeral_disk) with docker = "dind".
variable "dind_disk" {
  type    = number
  default = 20480
}

# With docker = "host-socket": the group id the client's /var/run/docker.sock belongs to (`stat -c
# %g /var/run/docker.sock` on the client), added to the runner's user so it may use the socket.
variable "docker_socket_gid" {
  type    = string
  default = ""
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
    ]
    # credential_wrap_token: only with the wrapping-token fallback (vault_role = "").
    meta_optional = ["dispatcher_id", "credential_wrap_token"]
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
      size = var.docker == "dind" ? var.dind_disk : 300
    }

    # docker = "dind": the tasks share one network namespace, so the runner reaches the daemon on
    # 127.0.0.1. Without a network block the group's mode is "host" and each docker task gets a
    # namespace of its own from the driver; "bridge" isolates the group: the client creates one
    # namespace for the allocation, which every task joins (hashicorp/nomad
    # client/allocrunner/network_manager_linux.go newNetworkManager, network_hook.go), set up by
    # the CNI bridge plugins (networking_bridge_linux.go), which the client needs in /opt/cni/bin.
    dynamic "network" {
      for_each = var.docker == "dind" ? ["bridge"] : []
      content {
        mode = network.value
      }
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

      # The Vault token lands in this task's own secrets directory (no environment variable: a
      # child process or a crash dump would carry it); the script revokes it once it has read the
      # credential. The main task has no vault block, so workflow code never gets a Vault token.
      dynamic "vault" {
        for_each = compact([var.vault_role])
        content {
          role        = vault.value
          namespace   = var.vault_namespace
          env         = false
          change_mode = "noop"
        }
      }

      # Named here rather than left to the servers' vault.default_identity, so the job works the
      # same on every cluster. The JWT only lives as long as the prestart needs it.
      dynamic "identity" {
        for_each = compact([var.vault_role])
        content {
          name = "vault_default"
          aud  = ["vault.io"]
          ttl  = "15m"
        }
      }

      env {
        VAULT_ADDR      = var.vault_addr
        VAULT_NAMESPACE = var.vault_namespace
        VAULT_KV_MOUNT  = var.vault_kv_mount
        VAULT_KV_PREFIX = var.vault_kv_prefix
      }

      template {
        destination = "local/configure-runner.sh"
        data        = file("runner/configure-runner.sh")
        perms       = "0644"
      }

      # A private CA for Vault: the script verifies Vault with this file when it is there. A CA
      # certificate is public, hence 0644; a template needs data, hence dynamic.
      dynamic "template" {
        for_each = compact([var.vault_ca_pem])
        content {
          destination = "local/vault-ca.pem"
          data        = template.value
          perms       = "0644"
        }
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }

    # docker = "dind": the daemon, started before the runner and running beside it (a prestart
    # sidecar). The entrypoint of docker-library's image generates a CA, a server and a client
    # certificate into DOCKER_TLS_CERTDIR and serves tcp://0.0.0.0:2376 with --tlsverify
    # (docker-library/docker 29/dind/dockerd-entrypoint.sh): the certificates are written to the
    # allocation's shared directory, where the runner reads the client's; the CA's key stays
    # root's. The daemon's storage is this task's own directory, gone with the allocation. It
    # sees the allocation directory at /home/runner, the runner's working directory, so the paths
    # the runner bind-mounts into job containers (its _work and externals, run-runner.sh puts them
    # there) are the same files for both. Both volumes are relative, inside the allocation
    # directory, which the docker driver allows without `volumes { enabled = true }`
    # (hashicorp/nomad drivers/docker/driver.go containerBinds). The dynamic blocks are expanded
    # by Nomad's parser (jobspec2/types.config.go, dynblock.Expand); with docker = "none" they
    # render nothing, so the job is the one without Docker.
    dynamic "task" {
      for_each = var.docker == "dind" ? [var.dind_image] : []
      labels   = ["docker"]

      content {
        driver = "docker"

        lifecycle {
          hook    = "prestart"
          sidecar = true
        }

        config {
          image      = task.value
          privileged = true
          volumes    = ["../alloc:/home/runner", "local/docker:/var/lib/docker"]
        }

        env {
          DOCKER_TLS_CERTDIR = "${NOMAD_ALLOC_DIR}/docker-certs"
        }

        resources {
          cpu    = var.dind_cpu
          memory = var.dind_memory
        }
      }
    }

    task "runner" {
      driver = "docker"

      # The same config for every docker value but "host-socket", which adds the client's socket.
      dynamic "config" {
        for_each = var.docker == "host-socket" ? [] : [var.image]
        content {
          image      = config.value
          entrypoint = ["/bin/bash"]
          args       = ["${NOMAD_TASK_DIR}/run-runner.sh"]
        }
      }

      dynamic "config" {
        for_each = var.docker == "host-socket" ? [var.image] : []
        content {
          image      = config.value
          entrypoint = ["/bin/bash"]
          args       = ["${NOMAD_TASK_DIR}/run-runner.sh"]
          volumes    = ["/var/run/docker.sock:/var/run/docker.sock"]
          group_add  = compact([var.docker_socket_gid])
        }
      }

      # How the runner and its job containers reach a daemon; run-runner.sh waits until it answers.
      dynamic "env" {
        for_each = var.docker == "dind" ? ["dind"] : []
        content {
          RUNNER_DOCKER     = env.value
          DOCKER_HOST       = "tcp://127.0.0.1:2376"
          DOCKER_TLS_VERIFY = "1"
          DOCKER_CERT_PATH  = "${NOMAD_ALLOC_DIR}/docker-certs/client"
          # Where the docker task sees the shared directory: the runner must run from there.
          RUNNER_DOCKER_SHARED_AT = "/home/runner"
        }
      }

      dynamic "env" {
        for_each = var.docker == "host-socket" ? ["host-socket"] : []
        content {
          RUNNER_DOCKER = env.value
          DOCKER_HOST   = "unix:///var/run/docker.sock"
        }
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
