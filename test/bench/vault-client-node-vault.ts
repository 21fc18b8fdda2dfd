// vault-client scenario child: the same store written with node-vault 0.12 (axios).
import { NodeVaultStore } from "./node-vault-store.js";
import { runVaultClientChild } from "./vault-client-child.js";

await runVaultClientChild((opts) => new NodeVaultStore(opts));
