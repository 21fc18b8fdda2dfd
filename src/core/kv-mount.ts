// Is the configured mount a KV version 2 engine? Decided from what Vault's
// sys/internal/ui/mounts/<path> answers (hashicorp/vault vault/logical_system.go,
// pathInternalUIMountRead: the mount's type and options, the same preflight `vault kv` makes).
// That endpoint answers 403 both for a mount that does not exist and for one the token may not
// touch, so that it cannot be used to list mounts; the token's capabilities under the mount are
// checked separately, so a 403 here with those granted means the mount is not there.

export interface KvMountInfo {
  type?: string;
  options?: Record<string, string> | null;
}

/** undefined: the mount is KV v2; otherwise what is wrong, in one line. */
export function kvMountProblem(mount: string, info: KvMountInfo | undefined): string | undefined {
  if (info === undefined) return `no secrets engine is mounted at ${mount}/ (or the token may use nothing under it)`;
  if (info.type !== "kv") return `${mount}/ is a ${info.type ?? "unknown"} secrets engine, not KV`;
  const version = info.options?.version ?? "1";
  if (version !== "2") return `${mount}/ is KV version ${version}; runner secrets need version 2 (check-and-set writes, versions, metadata)`;
  return undefined;
}
