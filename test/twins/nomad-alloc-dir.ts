// The allocation directory as Nomad's client builds it on disk, with the owners and modes a real
// client gives it, so that what runs in a task meets the same permissions as on a real node.
//
// hashicorp/nomad client/allocdir/alloc_dir.go (Build): `<alloc>/` 0755 owned by the Nomad
// process; `<alloc>/alloc` and its `logs`, `tmp`, `data` through allocMkdirAll.
// client/allocdir/task_dir.go (Build, MakeSecretsDirs): `<alloc>/<task>`, `local`, `secrets`,
// `private` through allocMkdirAll / allocMakeSecretsDir, `tmp` sticky.
// client/allocdir/fs_unix.go (dropDirPermissions): every one of those is chmod'ed to
// `desired | 0777` and, when the client runs as root, chowned to `nobody`: so all of them are
// world-writable, whatever mode the caller asked for.

import { execFileSync } from "node:child_process";
import { chmod, chown, mkdir, rm } from "node:fs/promises";
import { join } from "node:path";

/** The host paths of one task's directories (the docker driver mounts them at /local, /secrets). */
export interface TaskDir {
  dir: string;
  local: string;
  secrets: string;
  private: string;
  tmp: string;
}

export const IS_ROOT = process.getuid?.() === 0;

/** uid/gid of `nobody`, as users.Lookup("nobody") finds it. */
function nobody(): { uid: number; gid: number } {
  try {
    const id = (flag: string) => Number(execFileSync("id", [flag, "nobody"], { encoding: "utf8" }).trim());
    return { uid: id("-u"), gid: id("-g") };
  } catch {
    return { uid: 65534, gid: 65534 };
  }
}

const NOBODY = IS_ROOT ? nobody() : undefined;

/** allocMkdirAll: mkdir, chmod desired|0777, chown nobody when root. */
async function allocMkdir(path: string, mode = 0o777): Promise<void> {
  await mkdir(path, { recursive: true });
  await chmod(path, mode | 0o777);
  if (NOBODY) await chown(path, NOBODY.uid, NOBODY.gid);
}

export class AllocDir {
  private constructor(
    /** `<data_dir>/alloc/<alloc id>` */
    readonly root: string,
    /** The shared `alloc` directory (NOMAD_ALLOC_DIR). */
    readonly shared: string,
    private readonly tasks: Map<string, TaskDir>,
  ) {}

  static async build(dataDir: string, allocId: string, taskNames: string[]): Promise<AllocDir> {
    const root = join(dataDir, allocId);
    await mkdir(root, { recursive: true, mode: 0o755 });
    await chmod(root, 0o755);
    const shared = join(root, "alloc");
    await allocMkdir(shared, 0o755);
    for (const sub of ["logs", "tmp", "data"]) await allocMkdir(join(shared, sub));
    const tasks = new Map<string, TaskDir>();
    for (const name of taskNames) {
      const dir = join(root, name);
      const task: TaskDir = { dir, local: join(dir, "local"), secrets: join(dir, "secrets"), private: join(dir, "private"), tmp: join(dir, "tmp") };
      await allocMkdir(dir);
      await allocMkdir(task.local);
      await allocMkdir(task.tmp, 0o1777);
      await chmod(task.tmp, 0o1777);
      await allocMkdir(task.secrets);
      await allocMkdir(task.private);
      tasks.set(name, task);
    }
    return new AllocDir(root, shared, tasks);
  }

  task(name: string): TaskDir {
    const task = this.tasks.get(name);
    if (!task) throw new Error(`no task directory for ${name}`);
    return task;
  }

  /** Garbage collection of the allocation removes its directory (client/gc.go destroys it). */
  async destroy(): Promise<void> {
    await rm(this.root, { recursive: true, force: true });
  }
}
