// Secrets from stack config stay secret. `pulumi.runtime.allConfig()` gives every value as plain
// text, so a value set with `pulumi config set --secret` (a recipe script, a mirror URL with
// credentials, tags) would reach the resources as a plain input and be stored unencrypted. The
// engine tells which top-level keys hold secrets (a secret set with --path marks its whole key):
// the entries under such a key become secret inputs, except the names, regions and ids that key
// the stack's outputs (images: name → region → id), which other stacks must be able to read.
import * as pulumi from "@pulumi/pulumi";
import { plainConfigFields } from "./core/fields";
import { CONVERTED_FIELDS } from "./convertedHvmAmi/fields";
import { RECOVERY_ALARM_FIELDS } from "./recoveryAlarm/fields";
import { SHARED_AMI_FIELDS } from "./sharedAmi/fields";
import { SURROGATE_FIELDS } from "./surrogateAmi/fields";

/** Fields that stay plain even under a secret key: they name things and key the outputs (the tables' `secret: false` rows). */
export const PLAIN_FIELDS = [...new Set([CONVERTED_FIELDS, SURROGATE_FIELDS, SHARED_AMI_FIELDS, RECOVERY_ALARM_FIELDS].flatMap(plainConfigFields))];

/** Is this full config key ("ami-factory:builds") secret in the stack config? */
export function isSecretConfigKey(key: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const config = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (k: string) => boolean };
  return config.isConfigSecret?.(key) ?? false;
}

/** The entry with every field but PLAIN_FIELDS wrapped as a secret when `secret`. */
export function secretEntry<T extends object>(entry: T, secret: boolean): T {
  if (!secret) return entry;
  return Object.fromEntries(Object.entries(entry).map(([k, v]) => [k, PLAIN_FIELDS.includes(k) || v === undefined ? v : pulumi.secret(v)])) as T;
}

/** A message with every string value of a secret config key replaced by [secret] (config errors quote values). */
export function redactSecrets(message: string, all: Record<string, string>, isSecret = isSecretConfigKey): string {
  const leaves: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === "string") leaves.push(v);
    else if (v && typeof v === "object") Object.values(v).forEach(walk);
  };
  for (const [key, raw] of Object.entries(all)) {
    if (!isSecret(key)) continue;
    leaves.push(raw);
    try {
      walk(JSON.parse(raw));
    } catch {
      // a plain string: the raw value is the leaf
    }
  }
  return leaves
    .filter((l) => l.length >= 4)
    .sort((a, b) => b.length - a.length)
    .reduce((m, leaf) => m.split(leaf).join("[secret]"), message);
}
