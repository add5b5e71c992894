/**
 * rpm header blobs, as the rpm database stores them (one per installed package): a 4-byte index
 * length `il` and a 4-byte data length `dl` (big-endian), `il` index entries of 16 bytes (tag,
 * type, offset, count), then `dl` bytes of data. This is rpm's own "header blob" format
 * (lib/header.c, headerImport); the database holds it without the 8-byte magic of a package file.
 *
 * Everything is untrusted: the sizes, each entry's type, offset and count are checked against
 * the blob before anything is read, and a bad entry is a HeaderError saying which tag.
 */

export class HeaderError extends Error {}

export const enum HeaderType {
  Null = 0,
  Char = 1,
  Int8 = 2,
  Int16 = 3,
  Int32 = 4,
  Int64 = 5,
  String = 6,
  Bin = 7,
  StringArray = 8,
  I18nString = 9,
}

/** rpm's tag numbers (rpmtag.h) that the reader uses. */
export const TAG = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  OLDFILENAMES: 1027,
  FILESIZES: 1028,
  FILESTATES: 1029,
  FILEMODES: 1030,
  FILEDIGESTS: 1035,
  FILELINKTOS: 1036,
  FILEFLAGS: 1037,
  FILEUSERNAME: 1039,
  FILEGROUPNAME: 1040,
  ARCH: 1022,
  SOURCERPM: 1044,
  DIRINDEXES: 1116,
  BASENAMES: 1117,
  DIRNAMES: 1118,
  LONGFILESIZES: 5008,
  FILEDIGESTALGO: 5011,
} as const;

/** rpm's limits (header_internal.h): at most 0xffff tags and 256 MiB of data per header. */
export const HEADER_TAGS_MAX = 0xffff;
export const HEADER_DATA_MAX = 0x0fffffff;

interface Entry {
  type: number;
  offset: number;
  count: number;
}

/** Minimum bytes an item of each type takes, and its alignment (rpm's typeSizes/typeAlign). */
const FIXED_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 7: 1 };

export class RpmHeader {
  private readonly entries = new Map<number, Entry>();
  private readonly data: Buffer;

  /** Parses a header blob; throws HeaderError when its structure is inconsistent. */
  constructor(readonly blob: Buffer) {
    if (blob.length < 8) throw new HeaderError(`header blob of ${blob.length} bytes is too short`);
    const il = blob.readUInt32BE(0);
    const dl = blob.readUInt32BE(4);
    if (il === 0 || il > HEADER_TAGS_MAX) throw new HeaderError(`header has ${il} index entries`);
    if (dl > HEADER_DATA_MAX) throw new HeaderError(`header data of ${dl} bytes is too large`);
    const dataStart = 8 + il * 16;
    if (dataStart + dl !== blob.length) {
      throw new HeaderError(
        `header blob is ${blob.length} bytes, its index says ${dataStart + dl} (${il} entries, ${dl} data bytes)`,
      );
    }
    this.data = blob.subarray(dataStart);
    for (let i = 0; i < il; i++) {
      const at = 8 + i * 16;
      const tag = blob.readUInt32BE(at);
      const type = blob.readUInt32BE(at + 4);
      const offset = blob.readInt32BE(at + 8);
      const count = blob.readUInt32BE(at + 12);
      if (type > HeaderType.I18nString) throw new HeaderError(`tag ${tag} has unknown type ${type}`);
      if (offset < 0 || offset > dl)
        throw new HeaderError(`tag ${tag} has data offset ${offset} outside the header`);
      if (count === 0 || count > dl + 1) throw new HeaderError(`tag ${tag} has an impossible count ${count}`);
      const fixed = FIXED_SIZE[type];
      if (fixed !== undefined && offset + fixed * count > dl) {
        throw new HeaderError(
          `tag ${tag} (${count} items of ${fixed} bytes at ${offset}) runs past the header`,
        );
      }
      if (!this.entries.has(tag)) this.entries.set(tag, { type, offset, count });
    }
  }

  has(tag: number): boolean {
    return this.entries.has(tag);
  }

  /** How many items the tag holds (0 when absent), before anything is decoded. */
  count(tag: number): number {
    return this.entries.get(tag)?.count ?? 0;
  }

  private entry(tag: number, types: readonly number[]): Entry | undefined {
    const e = this.entries.get(tag);
    if (e === undefined) return undefined;
    if (!types.includes(e.type))
      throw new HeaderError(`tag ${tag} has type ${e.type}, expected ${types.join(' or ')}`);
    return e;
  }

  /** `count` NUL-terminated strings from `offset`; throws when one runs past the data. */
  private strings(tag: number, e: Entry): string[] {
    const out = new Array<string>(e.count);
    let p = e.offset;
    for (let i = 0; i < e.count; i++) {
      const end = this.data.indexOf(0, p);
      if (end < 0) throw new HeaderError(`string ${i + 1} of tag ${tag} is not terminated inside the header`);
      out[i] = this.data.toString('utf8', p, end);
      p = end + 1;
    }
    return out;
  }

  /** A STRING (or the first of a STRING_ARRAY / I18NSTRING), or undefined when absent. */
  string(tag: number): string | undefined {
    const e = this.entry(tag, [HeaderType.String, HeaderType.StringArray, HeaderType.I18nString]);
    if (e === undefined) return undefined;
    return this.strings(tag, { ...e, count: 1 })[0];
  }

  /** A STRING_ARRAY, or undefined when absent. */
  stringArray(tag: number): string[] | undefined {
    const e = this.entry(tag, [HeaderType.StringArray, HeaderType.String, HeaderType.I18nString]);
    return e === undefined ? undefined : this.strings(tag, e);
  }

  /** An integer array of any integer type (INT8/16/32 unsigned, INT64), or undefined. */
  numbers(tag: number): number[] | undefined {
    const e = this.entry(tag, [
      HeaderType.Char,
      HeaderType.Int8,
      HeaderType.Int16,
      HeaderType.Int32,
      HeaderType.Int64,
    ]);
    if (e === undefined) return undefined;
    const out = new Array<number>(e.count);
    const d = this.data;
    for (let i = 0; i < e.count; i++) {
      switch (e.type) {
        case HeaderType.Char:
        case HeaderType.Int8:
          out[i] = d.readUInt8(e.offset + i);
          break;
        case HeaderType.Int16:
          out[i] = d.readUInt16BE(e.offset + 2 * i);
          break;
        case HeaderType.Int32:
          out[i] = d.readUInt32BE(e.offset + 4 * i);
          break;
        default: {
          const v = d.readBigUInt64BE(e.offset + 8 * i);
          if (v > BigInt(Number.MAX_SAFE_INTEGER))
            throw new HeaderError(`tag ${tag} holds a value too large`);
          out[i] = Number(v);
        }
      }
    }
    return out;
  }

  /** The first integer of a tag, or undefined. */
  number(tag: number): number | undefined {
    return this.numbers(tag)?.[0];
  }
}
