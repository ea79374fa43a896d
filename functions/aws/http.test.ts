import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { apiGatewayV2 } from './http.ts';

/**
 * An HTTP API event as API Gateway sends it (payload format 2.0). Its
 * rawPath comes percent-decoded: captured events show GET /a%2Fb arriving
 * as rawPath "/a/b" (fastify/aws-lambda-fastify#169) and
 * /RSC/%40id%2Fassets%2Frsf0.js%23save.txt as "/RSC/@id/assets/rsf0.js#save.txt"
 * (honojs/hono#2156).
 */
function httpApiEvent(rawPath: string, rawQueryString = ''): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: 'GET /v1/rows/{table}/{rowId}',
    rawPath,
    rawQueryString,
    headers: { host: 'abc.execute-api.us-east-1.amazonaws.com' },
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc',
      domainName: 'abc.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc',
      http: { method: 'GET', path: rawPath, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1', userAgent: 'test' },
      requestId: 'r',
      routeKey: 'GET /v1/rows/{table}/{rowId}',
      stage: '$default',
      time: '26/Nov/2026:16:00:00 +0000',
      timeEpoch: 0,
    },
    isBase64Encoded: false,
  };
}

describe('API Gateway HTTP API adapter', () => {
  const app = new Hono().get('/v1/rows/:table/:rowId', (c) => c.json({ rowId: c.req.param('rowId'), q: c.req.query('x') ?? null }));
  const handler = apiGatewayV2(app);

  it('reads a decoded rawPath as the path it was: a row id with #, %, a space or non-ASCII is neither cut nor decoded twice', async () => {
    for (const rowId of ['a#b', '50%', '100%25', 'a b', 'é€', "it's(1)", 'a+b']) {
      const res = await handler(httpApiEvent(`/v1/rows/todos/${rowId}`, 'x=1'), {} as Context);
      expect(res.statusCode, rowId).toBe(200);
      expect(JSON.parse(res.body), rowId).toEqual({ rowId, q: '1' });
    }
  });

  it('keeps plain paths as they are', async () => {
    const res = await handler(httpApiEvent('/v1/rows/todos/abc-123_x.y~z'), {} as Context);
    expect(JSON.parse(res.body)).toEqual({ rowId: 'abc-123_x.y~z', q: null });
  });
});
