export {
  generateSigningKey,
  SigningKey,
  type GenerateSigningKeyOptions,
  type GeneratedSigningKey,
  type SigningKeyAlgorithm,
} from './keys.js';
export { writeSecretKeyFile, readKeyFile, MAX_KEY_FILE_BYTES } from './keyfile.js';
export { TrustedKeyring, MAX_KEYRING_KEYS, MAX_KEYRING_INPUT_BYTES } from './keyring.js';
export {
  verifyDetached,
  type VerifyOptions,
  type VerifiedSignature,
  MAX_SIGNATURE_BYTES,
  MAX_SIGNATURE_PACKETS,
  DEFAULT_CLOCK_SKEW_SECONDS,
} from './verify.js';
export { MAX_ARMORED_KEY_BYTES } from './common.js';
