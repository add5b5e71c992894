/**
 * The generator's version, recorded in every manifest and catalog it signs. 0.2.0: absent entries
 * say why (rpm %ghost / not installed), apk manifests mark protected paths as config files.
 * 0.3.0: Debian manifests carry the dpkg diversions the package itself makes (`diversions`).
 */
export const GENERATOR_VERSION = '0.3.0';
