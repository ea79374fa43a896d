import type { LivePoster } from '../live/broadcast.ts';
import { readJsonError, type AwsFetch } from './aws-fetch.ts';

/**
 * The API Gateway Management API of one WebSocket stage over signed fetch
 * (service `execute-api`): POST /@connections/{id} sends a frame, DELETE
 * closes the connection; both answer 410 GoneException for a connection
 * that no longer exists. The AwsFetch's endpoint is the stage's callback
 * URL, https://{api-id}.execute-api.{region}.amazonaws.com/{stage}.
 */
export class ApiGatewayLivePoster implements LivePoster {
  constructor(private readonly aws: AwsFetch) {}

  async post(id: string, text: string): Promise<boolean> {
    return this.call('POST', id, text);
  }

  async disconnect(id: string): Promise<void> {
    await this.call('DELETE', id);
  }

  private async call(method: 'POST' | 'DELETE', id: string, body?: string): Promise<boolean> {
    try {
      const res = await this.aws.send((endpoint) => {
        const url = new URL(endpoint);
        url.pathname = `${url.pathname.replace(/\/+$/, '')}/@connections/${encodeURIComponent(id)}`;
        return { method, url, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body }) };
      }, readJsonError);
      await res.arrayBuffer(); // release the connection
      return true;
    } catch (e) {
      if ((e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 410) return false;
      throw e;
    }
  }
}
