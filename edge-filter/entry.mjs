// The Worker's main module: a module-worker `fetch` handler that calls the filter's
// wasm `fetch` in build/index.js, the output of scripts/build-filter.sh.
//
// worker-build 0.8.7 exports a `WorkerEntrypoint` class behind `Proxy` objects, which
// the runtime constructs on every request. This module calls the class's `fetch`
// without constructing it, because the filter's handler reads nothing from the
// instance except `env` and `ctx`. The wasm glue in build/index.js still starts a new
// wasm instance after a panic: the `worker` crate's abort handler schedules it.
import Filter from "./build/index.js";

const filterFetch = Filter.prototype.fetch;

export default {
  fetch(request, env, ctx) {
    return filterFetch.call({ env, ctx }, request);
  },
};
