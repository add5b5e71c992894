/**
 * The Berkeley DB `Packages` file of rpm before 4.16 (RHEL/CentOS 7 and 8, UBI 8): a DB hash
 * database whose values are rpm header blobs, read page by page without Berkeley DB.
 *
 * What is used of the on-disk format (Berkeley DB's dbinc/db_page.h):
 *  - page 0 is the metadata page: magic 0x061561 (hash) at byte 12, in the byte order of the
 *    machine that wrote it (which the magic tells), the page size at byte 20, the last page
 *    number at byte 32, encryption algorithm at byte 24 (must be 0), flags at byte 26 (no page
 *    checksums);
 *  - every page starts with a 26-byte header: page number at 8, next page at 16, the number of
 *    entries at 20, `hf_offset` at 22 (on an overflow page: the bytes of data it holds), the
 *    page type at 25 (2 or 13: hash page, 7: overflow page);
 *  - a hash page holds `entries` 2-byte item offsets after its header, alternately a key and its
 *    value; an item starts with its type: 1 (data inline), 3 (off-page: 4-byte first overflow page
 *    number at +4, total length at +8), 2 (duplicates: not used by rpm);
 *  - an off-page value is the data of a chain of overflow pages, `hf_offset` bytes from each.
 *
 * The keys are rpm's header numbers; every value longer than a few bytes (all headers) is off
 * page. Each chain is followed at most once per page and never past the file, so a damaged or
 * hostile file costs at most its own size to read.
 */

export class BdbError extends Error {}

const HASH_MAGIC = 0x061561;
const PAGE_HEADER = 26;
const P_HASH_UNSORTED = 2;
const P_OVERFLOW = 7;
const P_HASH = 13;
const H_KEYDATA = 1;
const H_OFFPAGE = 3;

export interface BdbValue {
  /** The record's key bytes (rpm: the header number, 4 bytes). */
  key: Buffer;
  value: Buffer;
}

/**
 * Every key/value of the hash database in `file` (its bytes), values of off-page items
 * reassembled. Values longer than `maxValue` are refused. Inline values are returned too.
 */
export function readBdbHash(file: Buffer, maxValue: number): BdbValue[] {
  if (file.length < 512) throw new BdbError(`${file.length} bytes is too small for a Berkeley DB file`);
  let le: boolean;
  if (file.readUInt32LE(12) === HASH_MAGIC) le = true;
  else if (file.readUInt32BE(12) === HASH_MAGIC) le = false;
  else throw new BdbError('not a Berkeley DB hash database (bad magic number)');
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const u16 = (o: number): number => (le ? file.readUInt16LE(o) : file.readUInt16BE(o));

  const pageSize = u32(20);
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) {
    throw new BdbError(`invalid page size ${pageSize}`);
  }
  if (file[24] !== 0) throw new BdbError('the database is encrypted');
  // DBMETA_CHKSUM moves every page's items (rpm never makes such databases; its reader refuses them too).
  if (((file[26] ?? 0) & 0x01) !== 0)
    throw new BdbError('the database has page checksums, which rpm databases never use');
  const pages = Math.floor(file.length / pageSize);

  const readChain = (first: number, total: number, where: string): Buffer => {
    if (total > maxValue) throw new BdbError(`${where}: a value of ${total} bytes is larger than the limit`);
    const out = Buffer.allocUnsafe(total);
    let filled = 0;
    let pgno = first;
    let steps = 0;
    while (filled < total) {
      if (pgno === 0 || pgno >= pages) throw new BdbError(`${where}: overflow chain leads to page ${pgno}`);
      if (++steps > pages) throw new BdbError(`${where}: overflow chain loops`);
      const base = pgno * pageSize;
      if (file[base + 25] !== P_OVERFLOW)
        throw new BdbError(`${where}: page ${pgno} is not an overflow page`);
      const len = u16(base + 22);
      if (len > pageSize - PAGE_HEADER || len > total - filled) {
        throw new BdbError(`${where}: overflow page ${pgno} claims ${len} bytes`);
      }
      file.copy(out, filled, base + PAGE_HEADER, base + PAGE_HEADER + len);
      filled += len;
      pgno = u32(base + 16);
      if (len === 0 && filled < total) throw new BdbError(`${where}: empty overflow page ${pgno}`);
    }
    return out;
  };

  /** An item of a hash page: its bytes from `off` up to `end`. */
  const item = (base: number, off: number, end: number, where: string): Buffer => {
    if (off < PAGE_HEADER || off >= end || end > pageSize)
      throw new BdbError(`${where}: item offset ${off} is outside the page`);
    const type = file[base + off];
    if (type === H_KEYDATA) return file.subarray(base + off + 1, base + end);
    if (type === H_OFFPAGE) {
      if (off + 12 > end) throw new BdbError(`${where}: truncated off-page item`);
      return readChain(u32(base + off + 4), u32(base + off + 8), where);
    }
    throw new BdbError(`${where}: unsupported item type ${type}`);
  };

  const out: BdbValue[] = [];
  for (let pgno = 1; pgno < pages; pgno++) {
    const base = pgno * pageSize;
    const type = file[base + 25];
    if (type !== P_HASH && type !== P_HASH_UNSORTED) continue;
    const where = `page ${pgno}`;
    const entries = u16(base + 20);
    if (PAGE_HEADER + 2 * entries > pageSize) throw new BdbError(`${where}: ${entries} entries do not fit`);
    // Items are stored from the end of the page backwards: item i ends where item i-1 starts.
    let end = pageSize;
    for (let i = 0; i + 1 < entries; i += 2) {
      const keyOff = u16(base + PAGE_HEADER + 2 * i);
      const valueOff = u16(base + PAGE_HEADER + 2 * (i + 1));
      const key = item(base, keyOff, end, where);
      const value = item(base, valueOff, keyOff, where);
      end = valueOff;
      out.push({ key: Buffer.from(key), value: Buffer.from(value) });
    }
  }
  return out;
}
