// Container health probe: exit 0 when GET /health/ready answers 2xx (database and bus
// reachable), 1 on any other answer, a refused connection or no answer within four seconds.
// Orchestrators with separate probes use /health/live for liveness.
const port = process.env.PORT || '3000';

fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(4000) })
  .then((response) => process.exit(response.ok ? 0 : 1))
  .catch(() => process.exit(1));
