export * from './schema.js';
export {
  MANIFEST_KIND,
  manifestFileName,
  serialiseManifest,
  signManifest,
  verifyManifest,
  type VerifiedManifest,
} from './manifest.js';
