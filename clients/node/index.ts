export { LakeSyncClient, type ClientOptions, type ClientEvent, type SyncStatus, type SyncReport, type RowInput } from './client.ts';
export { RemoteError, OfflineError, type TokenProvider } from './transport.ts';
export { backoffDelay, type BackoffOptions } from './backoff.ts';
export { liveUrlOf, type LiveOptions, type WebSocketLike, type WebSocketConstructor } from './live.ts';
