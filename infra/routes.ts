/**
 * The /v1 routes of docs/openapi.json, as API Gateway routes to the http
 * function. A test keeps this list equal to the OpenAPI document. Explicit
 * routes (no catch-all) so unknown paths never reach (and bill) the function.
 * POST /v1/dev/token (tag `dev`) is left out: dev mode never runs in AWS.
 */
export const HTTP_ROUTES: ReadonlyArray<{ readonly method: 'GET' | 'POST'; readonly path: string }> = [
  { method: 'GET', path: '/v1/health' },
  { method: 'GET', path: '/v1/schema' },
  { method: 'POST', path: '/v1/push' },
  { method: 'GET', path: '/v1/pull' },
  { method: 'GET', path: '/v1/rows/{table}/{rowId}' },
  { method: 'GET', path: '/v1/admin/stats' },
  { method: 'GET', path: '/v1/checkpoint' },
  { method: 'GET', path: '/v1/checkpoint/{id}/{index}' },
  { method: 'POST', path: '/v1/admin/flush' },
];
