export { canonicalJson } from './canonical-json.js';
export {
  VerifiedDocument,
  serialiseDocument,
  sha256Hex,
  signDocument,
  verifyDocument,
  type DocumentKind,
  type SignedDocument,
} from './signed-document.js';
