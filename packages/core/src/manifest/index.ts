export * from './schema.js';
export {
  MANIFEST_KIND,
  manifestFileName,
  serialiseManifest,
  signManifest,
  sealManifest,
  openSealedManifest,
  verifyManifest,
  type VerifiedManifest,
} from './manifest.js';
