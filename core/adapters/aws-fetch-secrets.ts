import { AwsError, type AwsFetch } from './aws-fetch.ts';

/**
 * Secrets Manager's GetSecretValue over signed fetch (JSON protocol,
 * X-Amz-Target: secretsmanager.GetSecretValue), for the http function,
 * which reads its HS256 secret once per container without loading the SDK.
 * `secretId` is the secret's ARN or name. Only string secrets.
 */
export async function getSecretString(aws: AwsFetch, secretId: string): Promise<string> {
  const res = await aws.send(
    (url) => ({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'secretsmanager.GetSecretValue' },
      body: JSON.stringify({ SecretId: secretId }),
    }),
    readError,
  );
  const body = (await res.json()) as { SecretString?: unknown };
  if (typeof body.SecretString !== 'string') throw new AwsError('NoSecretString', `secret ${secretId} holds no string`, res.status, res.headers.get('x-amzn-requestid') ?? undefined);
  return body.SecretString;
}

/** `{"__type":"ResourceNotFoundException","Message":"..."}` */
function readError(res: Response, text: string): AwsError {
  let body: { __type?: unknown; message?: unknown; Message?: unknown } = {};
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    // Not JSON (a proxy's page): the status names it.
  }
  const type = typeof body.__type === 'string' ? body.__type : (res.headers.get('x-amzn-errortype') ?? '');
  const name = type.split('#').pop()?.split(':')[0] || `Http${res.status}`;
  const msg = typeof body.Message === 'string' ? body.Message : typeof body.message === 'string' ? body.message : text.slice(0, 200) || name;
  return new AwsError(name, msg, res.status, res.headers.get('x-amzn-requestid') ?? undefined);
}
