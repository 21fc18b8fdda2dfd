// vault-client scenario child: the service's own Vault store (plain HTTP over an undici pool).
import { VaultStore } from "../../src/vault/client.js";
import { runVaultClientChild } from "./vault-client-child.js";

await runVaultClientChild((opts) => new VaultStore(opts));
