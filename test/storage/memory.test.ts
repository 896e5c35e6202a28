import { MemoryStore } from '../../shared/storage/memory.ts';
import { storeConformance } from './conformance.ts';

storeConformance('MemoryStore', async () => new MemoryStore());
