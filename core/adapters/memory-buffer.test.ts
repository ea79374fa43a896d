import { MemoryBuffer } from './memory-buffer.ts';
import { runBufferConformance } from './buffer.conformance.ts';

runBufferConformance('memory', { create: () => Promise.resolve(new MemoryBuffer()) });
