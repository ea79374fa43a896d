import { DeferredAuthenticator } from '../../core/auth/deferred.ts';
import { JwtAuthenticator } from '../../core/auth/jwt.ts';
import type { Authenticator } from '../../core/auth/principal.ts';
import type { AwsSettings } from './env.ts';

/**
 * Token verification of the functions that face clients (http, live). An
 * HS256 secret in Secrets Manager is read at the first request (not at
 * init: a cold start does not wait for it, and a failed read answers 503
 * and is tried again by the next request), so the function's configuration
 * holds only its ARN.
 */
export function awsAuthenticator(settings: AwsSettings, readSecret: (secretId: string) => Promise<string>): Authenticator {
  const arn = settings.jwtSecretArn;
  if (arn === undefined) return new JwtAuthenticator(settings.auth);
  return new DeferredAuthenticator(async () => new JwtAuthenticator({ ...settings.auth, hs256Secret: await readSecret(arn) }));
}
