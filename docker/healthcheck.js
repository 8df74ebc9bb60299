// Container health probe: exit 0 when GET /health answers 2xx, 1 on any other answer,
// a refused connection or no answer within four seconds.
const port = process.env.PORT || '3000';

fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) })
  .then((response) => process.exit(response.ok ? 0 : 1))
  .catch(() => process.exit(1));
