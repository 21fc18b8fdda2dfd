// What the shipped bundle takes from undici, in place of its index (see scripts/bundle.ts).
// undici's index loads every part of it (mocks, caches, WebSocket, EventSource, interceptors)
// and costs some 12 MB resident; these parts cost 5. A name src/ imports that is not exported
// here fails the bundle build, so the bundle cannot silently lack it.
import Agent from "undici/lib/dispatcher/agent.js";
import Dispatcher from "undici/lib/dispatcher/dispatcher.js";
import api from "undici/lib/api/index.js";
import redirect from "undici/lib/interceptor/redirect.js";

// As undici's index does: request(), stream() and friends are methods of every dispatcher.
Object.assign(Dispatcher.prototype, api);

export { Agent };
export const interceptors = { redirect };
