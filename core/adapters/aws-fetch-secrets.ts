import { AwsError, readJsonError, type AwsFetch } from './aws-fetch.ts';

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
    readJsonError,
  );
  const body = (await res.json()) as { SecretString?: unknown };
  if (typeof body.SecretString !== 'string') throw new AwsError('NoSecretString', `secret ${secretId} holds no string`, res.status, res.headers.get('x-amzn-requestid') ?? undefined);
  return body.SecretString;
}
