// What the shipped bundle takes from undici, in place of its index (see scripts/bundle.ts).
// undici's index loads every part of it (fetch, mocks, caches, WebSocket, EventSource, all the
// interceptors): 744 KB of the bundle and about 1 MB more V8 heap for good, where these parts
// are 384 KB. A name src/ imports that is not exported here fails the bundle build, so the bundle
// cannot silently lack it (and test/integration/cli.test.ts runs the bundle end to end).

import api from "undici/lib/api/index.js";
import Agent from "undici/lib/dispatcher/agent.js";
import Dispatcher from "undici/lib/dispatcher/dispatcher.js";
import redirect from "undici/lib/interceptor/redirect.js";

// As undici's index does: request(), stream() and friends are methods of every dispatcher.
Object.assign(Dispatcher.prototype, api);

export { Agent };
export const interceptors = { redirect };
