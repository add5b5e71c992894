import { z } from 'zod';

/** Field schemas shared by every signed document (manifests, catalog snapshots). */

export const shortText = z.string().min(1).max(1024);
export const packageName = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9][A-Za-z0-9+._~@-]*$/, 'must be a package name (letters, digits, + . _ ~ @ -)');
export const version = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9.+~:_^-]+$/, 'must be a version string (letters, digits, . + ~ : _ ^ -)');
export const platformId = z
  .string()
  .max(200)
  .regex(
    /^[a-z0-9][a-z0-9._+-]{0,63}\/[a-z0-9][a-z0-9._+-]{0,63}\/[a-z0-9][a-z0-9._+-]{0,63}$/,
    'must be a platform id distro/release/arch',
  );
export const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits');
export const fingerprint = z
  .string()
  .regex(/^[0-9A-F]{40}$/, 'must be a 40-digit upper-case hex fingerprint');
export const timestamp = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/, 'must be a UTC time like 2026-01-31T12:00:00Z')
  .refine((s) => !Number.isNaN(Date.parse(s)), 'must be a real date');
