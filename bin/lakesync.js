#!/usr/bin/env node
// The `lakesync` command: runs the TypeScript CLI through tsx.
import { register } from 'tsx/esm/api';

register();
await import('../functions/local/cli-main.ts');
