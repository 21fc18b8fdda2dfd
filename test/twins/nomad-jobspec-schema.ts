// The block schemas of a Nomad HCL2 jobspec: which HCL attribute or block becomes which field of
// Nomad's api.Job, and what an unset field looks like in its JSON (null for pointers, zero values
// for plain fields), so a parse result has the same shape as Nomad's.

import type { JsonObject } from "./nomad-types.js";

export type FieldKind =
  | { kind: "string" | "int" | "bool" | "strings" | "duration" | "stringMap" | "rawMap" }
  | { kind: "block" | "blocks"; schema: BlockSchema }
  | { kind: "labeledBlocks"; schema: BlockSchema; orderKey: string }
  | { kind: "genericBlock" | "genericBlocks" | "genericLabeledMap" };

export interface BlockSchema {
  /** hcl name -> [API field, kind] */
  fields: Record<string, [string, FieldKind]>;
  /** The API object with every field at the value Go's encoder gives an unset field. */
  empty: () => JsonObject;
  normalize?: (decoded: JsonObject) => void;
}

const str = { kind: "string" } as const;
const int = { kind: "int" } as const;
const bool = { kind: "bool" } as const;
const strings = { kind: "strings" } as const;
const duration = { kind: "duration" } as const;
const stringMap = { kind: "stringMap" } as const;
const genericBlock = { kind: "genericBlock" } as const;
const genericBlocks = { kind: "genericBlocks" } as const;

function nulls(...fields: string[]): JsonObject {
  return Object.fromEntries(fields.map((field) => [field, null]));
}

const CONSTRAINT_OPERATOR_SHORTHANDS = [
  "distinct_hosts",
  "distinct_property",
  "regexp",
  "version",
  "semver",
  "set_contains",
  "set_contains_any",
  "set_contains_all",
  "is_set",
  "is_not_set",
];

const CONSTRAINT: BlockSchema = {
  fields: {
    attribute: ["LTarget", str],
    value: ["RTarget", str],
    operator: ["Operand", str],
    ...Object.fromEntries(CONSTRAINT_OPERATOR_SHORTHANDS.map((op) => [op, [`shorthand:${op}`, str]])),
  },
  empty: () => ({ LTarget: "", RTarget: "", Operand: "" }),
  normalize: expandConstraintShorthand,
};

/** `distinct_hosts = true` and friends set the operator; jobspec2 defaults the operator to "=". */
function expandConstraintShorthand(constraint: JsonObject): void {
  for (const key of Object.keys(constraint)) {
    if (!key.startsWith("shorthand:")) continue;
    const operator = key.slice("shorthand:".length);
    const value = constraint[key];
    delete constraint[key];
    constraint.Operand = operator;
    if (operator === "distinct_property") constraint.LTarget = value ?? "";
    else if (operator !== "distinct_hosts") constraint.RTarget = value ?? "";
  }
  if (constraint.Operand === "") constraint.Operand = "=";
}

const AFFINITY: BlockSchema = {
  fields: { attribute: ["LTarget", str], value: ["RTarget", str], operator: ["Operand", str], weight: ["Weight", int] },
  empty: () => ({ LTarget: "", RTarget: "", Operand: "", Weight: null }),
  normalize: (affinity) => {
    if (affinity.Operand === "") affinity.Operand = "=";
  },
};

const RESTART: BlockSchema = {
  fields: {
    interval: ["Interval", duration],
    attempts: ["Attempts", int],
    delay: ["Delay", duration],
    mode: ["Mode", str],
    render_templates: ["RenderTemplates", bool],
  },
  empty: () => nulls("Interval", "Attempts", "Delay", "Mode", "RenderTemplates"),
};

const RESCHEDULE: BlockSchema = {
  fields: {
    attempts: ["Attempts", int],
    interval: ["Interval", duration],
    delay: ["Delay", duration],
    delay_function: ["DelayFunction", str],
    max_delay: ["MaxDelay", duration],
    unlimited: ["Unlimited", bool],
  },
  empty: () => nulls("Attempts", "Interval", "Delay", "DelayFunction", "MaxDelay", "Unlimited"),
};

const EPHEMERAL_DISK: BlockSchema = {
  fields: { sticky: ["Sticky", bool], migrate: ["Migrate", bool], size: ["SizeMB", int] },
  empty: () => nulls("Sticky", "Migrate", "SizeMB"),
};

const LIFECYCLE: BlockSchema = {
  fields: { hook: ["Hook", str], sidecar: ["Sidecar", bool] },
  empty: () => ({ Hook: "", Sidecar: false }),
};

const RESOURCES: BlockSchema = {
  fields: {
    cpu: ["CPU", int],
    cores: ["Cores", int],
    memory: ["MemoryMB", int],
    memory_max: ["MemoryMaxMB", int],
    disk: ["DiskMB", int],
    network: ["Networks", genericBlocks],
    device: ["Devices", genericBlocks],
    numa: ["NUMA", genericBlock],
    secrets: ["SecretsMB", int],
    iops: ["IOPS", int],
  },
  empty: () => nulls("CPU", "Cores", "MemoryMB", "MemoryMaxMB", "DiskMB", "Networks", "Devices", "NUMA", "SecretsMB", "IOPS"),
};

const TEMPLATE: BlockSchema = {
  fields: {
    source: ["SourcePath", str],
    destination: ["DestPath", str],
    data: ["EmbeddedTmpl", str],
    change_mode: ["ChangeMode", str],
    change_script: ["ChangeScript", genericBlock],
    change_signal: ["ChangeSignal", str],
    once: ["Once", bool],
    splay: ["Splay", duration],
    perms: ["Perms", str],
    uid: ["Uid", int],
    gid: ["Gid", int],
    left_delimiter: ["LeftDelim", str],
    right_delimiter: ["RightDelim", str],
    env: ["Envvars", bool],
    vault_grace: ["VaultGrace", duration],
    wait: ["Wait", genericBlock],
    error_on_missing_key: ["ErrMissingKey", bool],
  },
  empty: () =>
    nulls(
      "SourcePath",
      "DestPath",
      "EmbeddedTmpl",
      "ChangeMode",
      "ChangeScript",
      "ChangeSignal",
      "Once",
      "Splay",
      "Perms",
      "Uid",
      "Gid",
      "LeftDelim",
      "RightDelim",
      "Envvars",
      "VaultGrace",
      "Wait",
      "ErrMissingKey",
    ),
  // jobspec2's normalizeTemplates
  normalize: (template) => {
    template.ChangeMode ??= "restart";
    template.Perms ??= "0644";
    template.Splay ??= 5e9;
    template.ErrMissingKey ??= false;
  },
};

const LOGS: BlockSchema = {
  fields: { max_files: ["MaxFiles", int], max_file_size: ["MaxFileSizeMB", int], enabled: ["Enabled", bool], disabled: ["Disabled", bool] },
  empty: () => nulls("MaxFiles", "MaxFileSizeMB", "Enabled", "Disabled"),
};

// api/tasks.go Vault and api/workload_identity.go WorkloadIdentity, with their hcl tags.
const VAULT: BlockSchema = {
  fields: {
    role: ["Role", str],
    namespace: ["Namespace", str],
    cluster: ["Cluster", str],
    env: ["Env", bool],
    disable_file: ["DisableFile", bool],
    change_mode: ["ChangeMode", str],
    change_signal: ["ChangeSignal", str],
    allow_token_expiration: ["AllowTokenExpiration", bool],
  },
  empty: () => nulls("Role", "Namespace", "Cluster", "Env", "DisableFile", "ChangeMode", "ChangeSignal", "AllowTokenExpiration"),
  // hashicorp/nomad jobspec2/parse_job.go normalizeVault, on every parse (canonicalized or not).
  normalize: (vault) => {
    vault.Env ??= true;
    vault.DisableFile ??= false;
    vault.ChangeMode ??= "restart";
  },
};

const IDENTITY: BlockSchema = {
  fields: {
    name: ["Name", str],
    aud: ["Audience", strings],
    change_mode: ["ChangeMode", str],
    change_signal: ["ChangeSignal", str],
    env: ["Env", bool],
    file: ["File", bool],
    filepath: ["Filepath", str],
    ttl: ["TTL", duration],
    extra_claims: ["ExtraClaims", strings],
  },
  empty: () => ({
    Name: "",
    Audience: null,
    ChangeMode: "",
    ChangeSignal: "",
    Env: false,
    File: false,
    Filepath: "",
    ServiceName: "",
    TTL: 0,
    ExtraClaims: null,
  }),
};

const TASK: BlockSchema = {
  fields: {
    driver: ["Driver", str],
    user: ["User", str],
    lifecycle: ["Lifecycle", { kind: "block", schema: LIFECYCLE }],
    config: ["Config", { kind: "rawMap" }],
    constraint: ["Constraints", { kind: "blocks", schema: CONSTRAINT }],
    affinity: ["Affinities", { kind: "blocks", schema: AFFINITY }],
    env: ["Env", stringMap],
    service: ["Services", genericBlocks],
    resources: ["Resources", { kind: "block", schema: RESOURCES }],
    restart: ["RestartPolicy", { kind: "block", schema: RESTART }],
    meta: ["Meta", stringMap],
    kill_timeout: ["KillTimeout", duration],
    logs: ["LogConfig", { kind: "block", schema: LOGS }],
    artifact: ["Artifacts", genericBlocks],
    vault: ["Vault", { kind: "block", schema: VAULT }],
    consul: ["Consul", genericBlock],
    template: ["Templates", { kind: "blocks", schema: TEMPLATE }],
    dispatch_payload: ["DispatchPayload", genericBlock],
    volume_mount: ["VolumeMounts", genericBlocks],
    leader: ["Leader", bool],
    shutdown_delay: ["ShutdownDelay", duration],
    kill_signal: ["KillSignal", str],
    kind: ["Kind", str],
    identity: ["Identities", { kind: "blocks", schema: IDENTITY }],
    secret: ["Secrets", { kind: "genericLabeledMap" }],
  },
  empty: () => ({
    Name: "",
    Driver: "",
    User: "",
    ...nulls(
      "Lifecycle",
      "Config",
      "Constraints",
      "Affinities",
      "Env",
      "Services",
      "Resources",
      "RestartPolicy",
      "Meta",
      "KillTimeout",
      "LogConfig",
      "Artifacts",
      "Vault",
      "Consul",
      "Templates",
      "DispatchPayload",
      "VolumeMounts",
    ),
    Leader: false,
    ShutdownDelay: 0,
    KillSignal: "",
    Kind: "",
    ...nulls("ScalingPolicies", "Secrets", "Identity", "Identities", "Actions", "Schedule"),
  }),
};

const GROUP: BlockSchema = {
  fields: {
    count: ["Count", int],
    constraint: ["Constraints", { kind: "blocks", schema: CONSTRAINT }],
    affinity: ["Affinities", { kind: "blocks", schema: AFFINITY }],
    task: ["Tasks", { kind: "labeledBlocks", schema: TASK, orderKey: "task" }],
    spread: ["Spreads", genericBlocks],
    volume: ["Volumes", { kind: "genericLabeledMap" }],
    restart: ["RestartPolicy", { kind: "block", schema: RESTART }],
    disconnect: ["Disconnect", genericBlock],
    reschedule: ["ReschedulePolicy", { kind: "block", schema: RESCHEDULE }],
    ephemeral_disk: ["EphemeralDisk", { kind: "block", schema: EPHEMERAL_DISK }],
    update: ["Update", genericBlock],
    migrate: ["Migrate", genericBlock],
    network: ["Networks", genericBlocks],
    meta: ["Meta", stringMap],
    service: ["Services", genericBlocks],
    shutdown_delay: ["ShutdownDelay", duration],
    max_run_duration: ["MaxRunDuration", duration],
    stop_after_client_disconnect: ["StopAfterClientDisconnect", duration],
    max_client_disconnect: ["MaxClientDisconnect", duration],
    scaling: ["Scaling", genericBlock],
    consul: ["Consul", genericBlock],
    prevent_reschedule_on_lost: ["PreventRescheduleOnLost", bool],
  },
  empty: () => ({
    Name: "",
    ...nulls(
      "Count",
      "Constraints",
      "Affinities",
      "Tasks",
      "Spreads",
      "Volumes",
      "RestartPolicy",
      "Disconnect",
      "ReschedulePolicy",
      "EphemeralDisk",
      "Update",
      "Migrate",
      "Networks",
      "Meta",
      "Services",
      "ShutdownDelay",
      "MaxRunDuration",
      "StopAfterClientDisconnect",
      "MaxClientDisconnect",
      "Scaling",
      "Consul",
      "PreventRescheduleOnLost",
    ),
  }),
};

const PARAMETERIZED: BlockSchema = {
  fields: { payload: ["Payload", str], meta_required: ["MetaRequired", strings], meta_optional: ["MetaOptional", strings] },
  empty: () => ({ Payload: "", MetaRequired: null, MetaOptional: null }),
};

const PERIODIC: BlockSchema = {
  fields: {
    enabled: ["Enabled", bool],
    cron: ["Spec", str],
    crons: ["Specs", strings],
    prohibit_overlap: ["ProhibitOverlap", bool],
    time_zone: ["TimeZone", str],
  },
  empty: () => nulls("Enabled", "Spec", "Specs", "SpecType", "ProhibitOverlap", "TimeZone"),
  normalize: (periodic) => {
    if (periodic.Spec !== null || periodic.Specs !== null) periodic.SpecType = "cron";
  },
};

export const JOB: BlockSchema = {
  fields: {
    region: ["Region", str],
    namespace: ["Namespace", str],
    id: ["ID", str],
    name: ["Name", str],
    type: ["Type", str],
    priority: ["Priority", int],
    all_at_once: ["AllAtOnce", bool],
    datacenters: ["Datacenters", strings],
    node_pool: ["NodePool", str],
    constraint: ["Constraints", { kind: "blocks", schema: CONSTRAINT }],
    affinity: ["Affinities", { kind: "blocks", schema: AFFINITY }],
    group: ["TaskGroups", { kind: "labeledBlocks", schema: GROUP, orderKey: "group" }],
    update: ["Update", genericBlock],
    multiregion: ["Multiregion", genericBlock],
    spread: ["Spreads", genericBlocks],
    periodic: ["Periodic", { kind: "block", schema: PERIODIC }],
    parameterized: ["ParameterizedJob", { kind: "block", schema: PARAMETERIZED }],
    reschedule: ["Reschedule", { kind: "block", schema: RESCHEDULE }],
    migrate: ["Migrate", genericBlock],
    meta: ["Meta", stringMap],
    ui: ["UI", genericBlock],
  },
  empty: () => ({
    ...nulls(
      "Region",
      "Namespace",
      "ID",
      "Name",
      "Type",
      "Priority",
      "AllAtOnce",
      "Datacenters",
      "NodePool",
      "Constraints",
      "Affinities",
      "TaskGroups",
      "Update",
      "Multiregion",
      "Spreads",
      "Periodic",
      "ParameterizedJob",
      "Reschedule",
      "Migrate",
      "Meta",
      "UI",
      "Stop",
      "ParentID",
    ),
    Dispatched: false,
    ...nulls(
      "DispatchIdempotencyToken",
      "Payload",
      "ConsulNamespace",
      "VaultNamespace",
      "NomadTokenID",
      "Status",
      "StatusDescription",
      "Stable",
      "Version",
      "SubmitTime",
      "CreateIndex",
      "ModifyIndex",
      "JobModifyIndex",
      "VersionTag",
    ),
  }),
};
