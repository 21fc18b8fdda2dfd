# Ephemeral GitHub Actions runner, dispatched once per queued workflow job by
# nomad-gha-dispatcher. Registered by the dispatcher at start (it overrides the job ID with
# NOMAD_RUNNER_JOB and passes the variables below); `nomad job run` works too.
#
# Credential flow: the dispatcher stores the runner credential in Vault KV v2 and puts only a
# single-use, short-TTL response-wrapping token in the dispatch meta. The prestart task unwraps it
# (Vault's audit log shows the unwrap) and hands the runner its configuration through the
# allocation directory; nothing secret is ever part of the job spec, its meta or a log line.

variable "vault_addr" {
  type        = string
  description = "Vault address as seen from the Nomad clients (the prestart task unwraps the credential there)."
  default     = "http://127.0.0.1:8200"
}

variable "datacenters" {
  type    = list(string)
  default = ["*"]
}

variable "node_pool" {
  type    = string
  default = "default"
}

variable "image" {
  type        = string
  description = "Runner image. Needs bash, curl, jq and the runner in /home/runner (the official image has all)."
  default     = "ghcr.io/actions/actions-runner:2.329.0"
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
    # One job, one runner: a failed runner is replaced by the dispatcher's reconciler with a fresh
    # credential, never by Nomad restarting a task whose single-use credential is spent.
    restart {
      attempts = 0
      mode     = "fail"
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    ephemeral_disk {
      size = 300
    }

    task "fetch-credential" {
      driver = "docker"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        image      = var.image
        entrypoint = ["/bin/bash", "-c"]
        args       = ["bash ${NOMAD_TASK_DIR}/fetch-credential.sh"]
      }

      env {
        VAULT_ADDR = var.vault_addr
      }

      # Unwraps once: a second unwrap (anyone else who read the meta) fails, and the audit log
      # shows who did it. The runner config goes to the shared alloc dir, readable by this alloc
      # only; the poststop task deletes it.
      template {
        destination = "local/fetch-credential.sh"
        perms       = "0700"
        data        = <<-EOT
          set -euo pipefail
          umask 077
          dir="$${NOMAD_ALLOC_DIR}/runner"
          mkdir -p "$dir"
          curl -fsS -X POST -H "X-Vault-Token: $${NOMAD_META_credential_wrap_token}" \
            "$${VAULT_ADDR}/v1/sys/wrapping/unwrap" > "$dir/credential.json"
          jq -e '.data.data.kind' "$dir/credential.json" > /dev/null
          echo "credential for $${NOMAD_META_runner_name} unwrapped"
        EOT
      }

      resources {
        cpu    = 100
        memory = 64
      }
    }

    task "runner" {
      driver = "docker"

      config {
        image      = var.image
        entrypoint = ["/bin/bash", "-c"]
        args       = ["bash ${NOMAD_TASK_DIR}/run-runner.sh"]
      }

      # A JIT config already holds name, labels and the ephemeral flag; a registration token is
      # turned into an ephemeral runner by config.sh. Either way the runner takes one job and exits.
      template {
        destination = "local/run-runner.sh"
        perms       = "0700"
        data        = <<-EOT
          set -euo pipefail
          cred="$${NOMAD_ALLOC_DIR}/runner/credential.json"
          cd /home/runner
          kind=$(jq -r '.data.data.kind' "$cred")
          if [ "$kind" = "jit" ]; then
            jitconfig=$(jq -r '.data.data.jitconfig' "$cred")
            # The encoded config is a map of the runner's settings files; keep them for poststop.
            echo "$jitconfig" | base64 -d | jq -r 'to_entries[] | "\(.key) \(.value)"' |
              while read -r file content; do echo "$content" | base64 -d > "$${NOMAD_ALLOC_DIR}/runner/$file"; done
            cp "$${NOMAD_ALLOC_DIR}"/runner/.runner "$${NOMAD_ALLOC_DIR}"/runner/.credentials* .
          else
            ./config.sh --unattended --ephemeral --disableupdate --replace \
              --url "$${NOMAD_META_runner_scope_url}" \
              --token "$(jq -r '.data.data.registration_token' "$cred")" \
              --name "$${NOMAD_META_runner_name}" \
              --labels "$${NOMAD_META_runner_labels}" --no-default-labels
            cp .runner .credentials* "$${NOMAD_ALLOC_DIR}/runner/"
          fi
          exec ./run.sh
        EOT
      }

      resources {
        cpu    = var.cpu
        memory = var.memory
      }
    }

    task "remove-runner" {
      driver = "docker"

      lifecycle {
        hook = "poststop"
      }

      config {
        image      = var.image
        entrypoint = ["/bin/bash", "-c"]
        args       = ["bash ${NOMAD_TASK_DIR}/remove-runner.sh"]
      }

      # Ephemeral runners that ran their job are already gone; this catches one that never got a
      # job (cancelled, or stopped by the dispatcher). Never fails the allocation: the
      # dispatcher's reconciler removes anything left over.
      template {
        destination = "local/remove-runner.sh"
        perms       = "0700"
        data        = <<-EOT
          dir="$${NOMAD_ALLOC_DIR}/runner"
          cd /home/runner
          if [ -f "$dir/.runner" ] && [ -f "$dir/credential.json" ]; then
            cp "$dir"/.runner "$dir"/.credentials* . 2>/dev/null
            token=$(jq -r '.data.data.remove_token // empty' "$dir/credential.json")
            [ -n "$token" ] && ./config.sh remove --token "$token" || echo "runner not removed here; the dispatcher will"
          fi
          rm -rf "$dir"
          exit 0
        EOT
      }

      resources {
        cpu    = 100
        memory = 128
      }
    }
  }
}
