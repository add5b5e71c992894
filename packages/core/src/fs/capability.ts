/**
 * File capabilities: the `security.capability` extended attribute (struct vfs_cap_data, see
 * capabilities(7) and linux/capability.h), decoded so a report can say `cap_net_raw=ep` instead of
 * a hex blob. The raw bytes stay the reference: two files have the same capabilities when their
 * `raw` strings are equal.
 */

/** The xattr that holds a file's capabilities. */
export const CAPABILITY_XATTR = 'security.capability';

/** Capability names by number (linux/capability.h, up to Linux 6.x). */
export const CAPABILITY_NAMES: readonly string[] = [
  'cap_chown',
  'cap_dac_override',
  'cap_dac_read_search',
  'cap_fowner',
  'cap_fsetid',
  'cap_kill',
  'cap_setgid',
  'cap_setuid',
  'cap_setpcap',
  'cap_linux_immutable',
  'cap_net_bind_service',
  'cap_net_broadcast',
  'cap_net_admin',
  'cap_net_raw',
  'cap_ipc_lock',
  'cap_ipc_owner',
  'cap_sys_module',
  'cap_sys_rawio',
  'cap_sys_chroot',
  'cap_sys_ptrace',
  'cap_sys_pacct',
  'cap_sys_admin',
  'cap_sys_boot',
  'cap_sys_nice',
  'cap_sys_resource',
  'cap_sys_time',
  'cap_sys_tty_config',
  'cap_mknod',
  'cap_lease',
  'cap_audit_write',
  'cap_audit_control',
  'cap_setfcap',
  'cap_mac_override',
  'cap_mac_admin',
  'cap_syslog',
  'cap_wake_alarm',
  'cap_block_suspend',
  'cap_audit_read',
  'cap_perfmon',
  'cap_bpf',
  'cap_checkpoint_restore',
];

const VFS_CAP_REVISION_MASK = 0xff000000;
const VFS_CAP_FLAGS_EFFECTIVE = 0x000001;
/** Revision → number of 32-bit (permitted, inheritable) pairs and total xattr size in bytes. */
const REVISIONS: Record<number, { words: number; bytes: number }> = {
  1: { words: 1, bytes: 12 },
  2: { words: 2, bytes: 20 },
  3: { words: 2, bytes: 24 }, // v3 adds the namespace root uid
};

/** A decoded `security.capability` value. */
export interface FileCapability {
  /** The xattr value, lower-case hex: the value to compare. */
  raw: string;
  /** vfs_cap_data revision (1, 2 or 3), or undefined when the value is not one we can decode. */
  version: number | undefined;
  /** False when the value is malformed (unknown revision, wrong length, unknown flags). */
  valid: boolean;
  /** The effective flag: every permitted or inheritable capability is raised on exec. */
  effective?: boolean;
  /** Capability names (`cap_net_raw`; `cap_<n>` for numbers without a name), by number. */
  permitted?: string[];
  inheritable?: string[];
  /** Revision 3: the root uid of the user namespace the capabilities apply in. */
  rootUid?: number;
  /**
   * Text in libcap's style, e.g. `cap_net_raw=ep` or `cap_chown,cap_net_raw=eip cap_kill=i`:
   * capabilities grouped by their flags (`e`, `i`, `p`), groups in order of their first
   * capability's number, then ` [rootid=N]` for revision 3. For a single group (the usual case)
   * it is exactly what getcap(8) prints; with several groups getcap may word it differently.
   */
  text?: string;
}

function capabilityName(n: number): string {
  return CAPABILITY_NAMES[n] ?? `cap_${n}`;
}

/** Decodes a `security.capability` xattr value. Never throws: malformed values come back with valid: false. */
export function decodeCapability(value: Uint8Array): FileCapability {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const raw = buf.toString('hex');
  if (buf.length < 4) return { raw, version: undefined, valid: false };
  const magic = buf.readUInt32LE(0);
  const version = (magic & VFS_CAP_REVISION_MASK) >>> 24;
  const layout = REVISIONS[version];
  const flags = magic & ~VFS_CAP_REVISION_MASK;
  if (layout === undefined || buf.length !== layout.bytes || (flags & ~VFS_CAP_FLAGS_EFFECTIVE) !== 0) {
    return { raw, version: layout === undefined ? undefined : version, valid: false };
  }
  const effective = (flags & VFS_CAP_FLAGS_EFFECTIVE) !== 0;
  const permittedBits: number[] = [];
  const inheritableBits: number[] = [];
  for (let w = 0; w < layout.words; w++) {
    const p = buf.readUInt32LE(4 + 8 * w);
    const i = buf.readUInt32LE(8 + 8 * w);
    for (let b = 0; b < 32; b++) {
      if ((p >>> b) & 1) permittedBits.push(32 * w + b);
      if ((i >>> b) & 1) inheritableBits.push(32 * w + b);
    }
  }
  const result: FileCapability = {
    raw,
    version,
    valid: true,
    effective,
    permitted: permittedBits.map(capabilityName),
    inheritable: inheritableBits.map(capabilityName),
  };
  if (version === 3) result.rootUid = buf.readUInt32LE(20);

  // Group capabilities by their flag string, in order of first appearance by number.
  const all = [...new Set([...permittedBits, ...inheritableBits])].sort((a, b) => a - b);
  const groups = new Map<string, string[]>();
  for (const n of all) {
    const i = inheritableBits.includes(n);
    const p = permittedBits.includes(n);
    const flagText = `${effective ? 'e' : ''}${i ? 'i' : ''}${p ? 'p' : ''}`;
    let names = groups.get(flagText);
    if (names === undefined) groups.set(flagText, (names = []));
    names.push(capabilityName(n));
  }
  let text = groups.size === 0 ? '=' : [...groups].map(([f, names]) => `${names.join(',')}=${f}`).join(' ');
  if (result.rootUid !== undefined) text += ` [rootid=${result.rootUid}]`;
  result.text = text;
  return result;
}
