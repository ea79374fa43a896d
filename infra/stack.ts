import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { Schedule } from 'aws-cdk-lib/aws-events';
import { Secret, type ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { Construct } from 'constructs';
import { LakeSync, type LakeSyncAppConfig, type LakeSyncAuth } from './lakesync-construct.ts';

/**
 * The settings a deployer chooses, usually as `-c key=value` on the cdk
 * command line (or in cdk.json's "context"). All optional.
 */
export interface LakeSyncStackSettings {
  /** Path of the app config (schema + rules). Default lakesync.config.json. */
  readonly configFile?: string;
  /** Tokens from your identity provider, verified against its JWKS. */
  readonly jwksUrl?: string;
  /** Without jwksUrl: an HS256 secret is generated in Secrets Manager (or give its name here). */
  readonly jwtSecretName?: string;
  /** The `iss` and `aud` every token must carry, and the claim naming the client id (default client_id). */
  readonly jwtIssuer?: string;
  readonly jwtAudience?: string;
  readonly jwtClientIdClaim?: string;
  /** An EventBridge schedule expression, e.g. "rate(1 hour)" or "cron(0 3 * * ? *)". */
  readonly schedule?: string;
  readonly flushMaxDeltas?: number;
  readonly flushMaxAgeSeconds?: number;
  /** Buffer shards (default 4); fixed once deployed. */
  readonly shards?: number;
  readonly corsAllowOrigins?: readonly string[];
  /** "destroy" deletes the table and bucket with the stack (for trials). Default retain. */
  readonly removal?: 'retain' | 'destroy';
  /** Directory of the Lambda entries (default functions/aws). */
  readonly functionsDir?: string;
}

/** Reads `lakesync:*` context values into settings. */
export function settingsFromContext(scope: Construct): LakeSyncStackSettings {
  const get = (key: string): string | undefined => {
    const v: unknown = scope.node.tryGetContext(`lakesync:${key}`);
    return v === undefined || v === null || v === '' ? undefined : String(v);
  };
  const num = (key: string): number | undefined => {
    const v = get(key);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`context lakesync:${key} must be a positive number, got "${v}"`);
    return n;
  };
  const removal = get('removal');
  if (removal !== undefined && removal !== 'retain' && removal !== 'destroy') throw new Error('context lakesync:removal must be "retain" or "destroy"');
  const cors = get('corsAllowOrigins');
  const settings: Record<string, unknown> = {
    configFile: get('config'),
    jwksUrl: get('jwksUrl'),
    jwtSecretName: get('jwtSecretName'),
    jwtIssuer: get('jwtIssuer'),
    jwtAudience: get('jwtAudience'),
    jwtClientIdClaim: get('jwtClientIdClaim'),
    schedule: get('schedule'),
    flushMaxDeltas: num('flushMaxDeltas'),
    shards: num('shards'),
    flushMaxAgeSeconds: num('flushMaxAgeSeconds'),
    corsAllowOrigins: cors?.split(',').map((s) => s.trim()).filter((s) => s !== ''),
    removal,
    functionsDir: get('functionsDir'),
  };
  return Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)) as LakeSyncStackSettings;
}

export interface LakeSyncStackProps extends StackProps {
  readonly settings?: LakeSyncStackSettings;
}

/** A thin stack around the LakeSync construct; `infra/app.ts` deploys it. */
export class LakeSyncStack extends Stack {
  readonly lakesync: LakeSync;

  constructor(scope: Construct, id: string, props: LakeSyncStackProps = {}) {
    super(scope, id, props);
    const settings = props.settings ?? settingsFromContext(this);
    const configPath = resolve(settings.configFile ?? 'lakesync.config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as LakeSyncAppConfig;
    if (config.schema === undefined) throw new Error(`${configPath} has no "schema"`);

    let auth: LakeSyncAuth;
    let generatedSecret: Secret | null = null;
    if (settings.jwksUrl !== undefined) {
      auth = { jwksUrl: settings.jwksUrl };
    } else {
      // The http function reads it from Secrets Manager at run time: neither
      // the template nor the function's configuration holds the secret.
      const secret =
        settings.jwtSecretName !== undefined
          ? Secret.fromSecretNameV2(this, 'JwtSecret', settings.jwtSecretName)
          : new Secret(this, 'JwtSecret', {
              description: 'LakeSync HS256 token secret: your auth server signs client tokens with it',
              generateSecretString: { passwordLength: 48, excludePunctuation: true },
            });
      if (secret instanceof Secret) {
        generatedSecret = secret;
        Validations.of(secret).acknowledge({
          id: 'AwsSolutions-SMG4',
          reason: 'Rotating the HS256 secret invalidates every client token; rotate deliberately (update the secret, replace the http function containers, reissue tokens).',
        });
      }
      // Cast: aws-cdk-lib's classes and interfaces disagree under exactOptionalPropertyTypes.
      auth = { jwtSecret: secret as ISecret };
    }

    const checks = {
      ...(settings.jwtIssuer !== undefined ? { issuer: settings.jwtIssuer } : {}),
      ...(settings.jwtAudience !== undefined ? { audience: settings.jwtAudience } : {}),
      ...(settings.jwtClientIdClaim !== undefined ? { clientIdClaim: settings.jwtClientIdClaim } : {}),
    };
    const destroy = settings.removal === 'destroy';
    this.lakesync = new LakeSync(this, 'LakeSync', {
      config,
      auth: { ...auth, ...checks },
      ...(settings.functionsDir !== undefined ? { functionsDir: resolve(settings.functionsDir) } : {}),
      ...(settings.schedule !== undefined ? { maintenanceSchedule: Schedule.expression(settings.schedule) } : {}),
      ...(settings.flushMaxDeltas !== undefined ? { flushMaxDeltas: settings.flushMaxDeltas } : {}),
      ...(settings.shards !== undefined ? { shards: settings.shards } : {}),
      ...(settings.flushMaxAgeSeconds !== undefined ? { flushMaxAge: Duration.seconds(settings.flushMaxAgeSeconds) } : {}),
      ...(settings.corsAllowOrigins !== undefined ? { corsAllowOrigins: settings.corsAllowOrigins } : {}),
      removalPolicy: destroy ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
    });
    // Short output names for scripts: `jq -r .LakeSync.ApiUrl cdk-outputs.json`.
    this.lakesync.outputs.apiUrl.overrideLogicalId('ApiUrl');
    this.lakesync.outputs.liveUrl.overrideLogicalId('LiveUrl');
    this.lakesync.outputs.bucketName.overrideLogicalId('BucketName');
    this.lakesync.outputs.glueDatabaseName.overrideLogicalId('GlueDatabaseName');
    this.lakesync.outputs.tableName.overrideLogicalId('TableName');
    if (generatedSecret !== null) {
      new CfnOutput(this, 'JwtSecretArn', {
        value: generatedSecret.secretArn,
        description: 'HS256 secret your auth server signs client tokens with (aws secretsmanager get-secret-value --secret-id <arn>)',
      });
    }
  }
}
