/**
 * Every failure sysattest expects is a SysattestError with a stable `code`: callers (and the CLIs)
 * switch on the code, never on message text. The message is written for the user: it says what was
 * wrong and, where it can, where (file, line, field).
 */
export class SysattestError<C extends string = string> extends Error {
  readonly code: C;

  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Platform ids and platform detection. */
export class PlatformError extends SysattestError<'INVALID_PLATFORM' | 'PLATFORM_NOT_DETECTED'> {}

/** Version strings that do not follow their scheme's syntax. */
export class VersionError extends SysattestError<'INVALID_VERSION' | 'UNKNOWN_VERSION_SCHEME'> {}

/** Paths inside a root: what resolution refused and why. */
export class PathError extends SysattestError<
  | 'INVALID_PATH'
  | 'NOT_FOUND'
  | 'NOT_A_DIRECTORY'
  | 'SYMLINK_LOOP'
  | 'NOT_A_REGULAR_FILE'
  | 'TOO_LARGE'
  | 'IO_ERROR'
> {}

/** A package database (dpkg status, .list, md5sums, diversions…) that cannot be read as it is. */
export class PackageDatabaseError extends SysattestError<
  'DATABASE_NOT_FOUND' | 'DATABASE_CORRUPT' | 'DATABASE_TOO_LARGE'
> {
  /** The file (host path) and 1-based line where the problem was found, when known. */
  readonly file: string | undefined;
  readonly line: number | undefined;

  constructor(
    code: 'DATABASE_NOT_FOUND' | 'DATABASE_CORRUPT' | 'DATABASE_TOO_LARGE',
    message: string,
    where: { file?: string; line?: number } = {},
    options?: { cause?: unknown },
  ) {
    const at = where.file ? ` (${where.file}${where.line !== undefined ? `:${where.line}` : ''})` : '';
    super(code, `${message}${at}`, options);
    this.file = where.file;
    this.line = where.line;
  }
}

/** OpenPGP keys: generation, parsing, key files. */
export class KeyError extends SysattestError<
  | 'MALFORMED_KEY'
  | 'NOT_A_SECRET_KEY'
  | 'WRONG_PASSPHRASE'
  | 'PASSPHRASE_REQUIRED'
  | 'UNSUPPORTED_KEY'
  | 'KEY_FILE_ERROR'
> {}

/**
 * Signature verification outcomes other than success. Each is distinct so a client can say exactly
 * why a manifest was refused.
 */
export class SignatureError extends SysattestError<
  | 'MALFORMED_SIGNATURE' // not an OpenPGP signature at all, truncated, or over the size cap
  | 'UNKNOWN_SIGNER' // signed by a key that is not pinned
  | 'BAD_SIGNATURE' // signed by a pinned key, but the bytes are not the bytes that were signed
  | 'KEY_EXPIRED' // the pinned key (or its signing subkey) had expired when the signature was made
  | 'KEY_REVOKED' // the pinned key (or its signing subkey) is revoked
  | 'NO_TRUSTED_KEYS' // verification attempted with an empty keyring
> {
  /** Fingerprint (40 upper-case hex) of the key that made the signature, when it could be read. */
  readonly signerFingerprint: string | undefined;

  constructor(
    code: SignatureError['code'],
    message: string,
    signerFingerprint?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.signerFingerprint = signerFingerprint;
  }
}

/** Manifests that fail the schema, the size caps, or their own consistency rules. */
export class ManifestError extends SysattestError<
  'MANIFEST_TOO_LARGE' | 'MANIFEST_INVALID' | 'MANIFEST_MISMATCH'
> {}

/** Catalog snapshots that fail the schema, the size caps, or their own consistency rules. */
export class CatalogError extends SysattestError<
  'CATALOG_TOO_LARGE' | 'CATALOG_INVALID' | 'CATALOG_MISMATCH'
> {}

export function isSysattestError(e: unknown): e is SysattestError {
  return e instanceof SysattestError;
}
