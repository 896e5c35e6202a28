// Worker VM size profiles (pure). As the product documents them: small for databases under 22 GB,
// medium up to 112 GB, large above that and for a first full backup (everything is new data), and
// an archive profile for copies between repositories (network-bound, little CPU).
import type { WorkerProfile } from '../db/config-store.ts';

const GB = 1024 ** 3;
export const SMALL_LIMIT_BYTES = 22 * GB;
export const MEDIUM_LIMIT_BYTES = 112 * GB;

/** Azure VM sizes per profile (2, 4 and 8 vCPUs; the archive profile favours network over CPU). */
export const PROFILE_VM_SIZES: Record<WorkerProfile, string> = {
  small: 'Standard_D2s_v5',
  medium: 'Standard_D4s_v5',
  large: 'Standard_D8s_v5',
  archive: 'Standard_D2ds_v5',
};

const ORDER: WorkerProfile[] = ['small', 'medium', 'large'];

export type WorkPurpose = 'backup' | 'restore' | 'archive';

/**
 * The profile for a piece of work. A worker configuration's profile is a floor: administrators
 * raise it for databases that need more, the size rule never lowers it.
 */
export function chooseProfile(o: { purpose: WorkPurpose; sizeBytes: number | null; firstBackup?: boolean; configured?: WorkerProfile | null }): WorkerProfile {
  if (o.purpose === 'archive') return 'archive';
  let p: WorkerProfile;
  if (o.purpose === 'backup' && o.firstBackup) p = 'large';
  else if (o.sizeBytes === null) p = 'small';
  else if (o.sizeBytes < SMALL_LIMIT_BYTES) p = 'small';
  else if (o.sizeBytes <= MEDIUM_LIMIT_BYTES) p = 'medium';
  else p = 'large';
  const floor = o.configured && o.configured !== 'archive' ? o.configured : null;
  return floor && ORDER.indexOf(floor) > ORDER.indexOf(p) ? floor : p;
}
