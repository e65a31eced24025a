// Stands in for Workers KV in the benchmark: workerd sends each KV read of the
// CAS_REVOCATIONS binding here, and a 404 means the key is absent, as for every session
// that was never revoked.
export default {
  async fetch() {
    return new Response(null, { status: 404 });
  },
};
