export * from './schema.js';
export { canonicalJson } from './canonical-json.js';
export {
  VerifiedManifest,
  manifestFileName,
  serialiseManifest,
  sha256Hex,
  signManifest,
  verifyManifest,
  type SignedManifest,
} from './manifest.js';
