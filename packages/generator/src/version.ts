/** The generator's version, recorded in every manifest and catalog it signs. */
export const GENERATOR_VERSION = '0.1.0';
