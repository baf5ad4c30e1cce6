// Device inventory: which devices are known, trusted, revoked. Read at load; looked up per request.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { ConfigError, type Config } from '../config/index.ts';

const inventorySchema = z.strictObject({
  devices: z.array(
    z.strictObject({
      id: z.string().regex(/^[A-Za-z0-9_.:-]{1,128}$/),
      cert_sha256: z
        .string()
        .regex(/^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/, 'cert_sha256 is the certificate fingerprint AA:BB:…')
        .optional(),
      owner: z.string().optional(),
      trusted: z.boolean().default(false),
      revoked: z.boolean().default(false),
    }),
  ),
});

export interface Device {
  readonly id: string;
  readonly owner: string | undefined;
  readonly trusted: boolean;
  readonly revoked: boolean;
}

export interface DeviceInventory {
  byId(id: string): Device | undefined;
  byCertificate(fingerprint256: string): Device | undefined;
}

export interface CompiledDevices {
  readonly inventory: DeviceInventory;
  /** Lower-case device id header, believed only from trusted_proxies. */
  readonly header: string | undefined;
}

/** The devices block (reads the inventory file): frozen; throws ConfigError with `path` under `devices`. */
export function compileDevices(cfg: NonNullable<Config['devices']>, baseDir: string): CompiledDevices {
  try {
    return Object.freeze({ inventory: loadDeviceInventory(resolve(baseDir, cfg.inventory)), header: cfg.header?.toLowerCase() });
  } catch (err) {
    throw new ConfigError('CFG_BAD_FILE', ['inventory'], (err as Error).message);
  }
}

export function loadDeviceInventory(path: string): DeviceInventory {
  const parsed = inventorySchema.safeParse(parse(readFileSync(path, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`device inventory ${path}: ${issue?.path.join('.')}: ${issue?.message}`);
  }
  const ids = new Map<string, Device>();
  const certs = new Map<string, Device>();
  for (const d of parsed.data.devices) {
    if (ids.has(d.id)) throw new Error(`device inventory ${path}: duplicate device id "${d.id}"`);
    const device = Object.freeze({ id: d.id, owner: d.owner, trusted: d.trusted, revoked: d.revoked });
    ids.set(d.id, device);
    if (d.cert_sha256) certs.set(d.cert_sha256.toUpperCase(), device);
  }
  return Object.freeze({ byId: (id: string) => ids.get(id), byCertificate: (fp: string) => certs.get(fp.toUpperCase()) });
}
