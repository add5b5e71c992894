export { canonicalJson, matchesCanonicalJson } from './canonical-json.js';
export {
  VerifiedDocument,
  SEAL_SECRET_BYTES,
  openDocumentSeal,
  sealDocument,
  type DocumentSeal,
  type VerifyDocumentOptions,
  serialiseDocument,
  sha256Hex,
  signDocument,
  verifyDocument,
  type DocumentKind,
  type SignedDocument,
} from './signed-document.js';
