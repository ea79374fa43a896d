import type { Claims } from '../rules.ts';

/** Who is calling, as established by the auth port from a verified token. */
export interface Principal {
  /** The client (device/installation) id the token is bound to. */
  readonly clientId: string;
  /** The user, from the `sub` claim. */
  readonly userId: string;
  /** All verified claims; sync rules read them. */
  readonly claims: Claims;
  readonly admin: boolean;
}

/** The auth port: turns an Authorization header into a Principal or throws a LakeSyncError. */
export interface Authenticator {
  authenticate(authorization: string | null): Promise<Principal>;
}
