// One field table per resource (providers/<resource>/fields.ts) declares each input once: its
// type, its doc with the default (the JSDoc on the table's row, which the derived Args type
// shows), what a change does, whether it is part of the build id, how stack config spells it and
// whether it may carry a secret. Check, diff, build id, stack config and the Args/Inputs types
// derive from the table; adding an attribute is one row (and the code that uses it).
import type * as pulumi from "@pulumi/pulumi";
import { Checker, Failure, isUnknown, patterns, sortedUnique } from "./inputs";

/** What a change of the field does to the resource. */
export type Change =
  /** A new resource (image, copies, alarm): the diff names the field. */
  | "replace"
  /** Updated on the resource as it is. */
  | "in-place"
  /** Read when the resource is next made (e.g. how to verify it): a change alone changes nothing. */
  | "next-build"
  /** Set by the resource class (scope, the guest script's hash): never the user's to give. */
  | "internal";

type Raw = Record<string, unknown>;

/** `A`: what the user gives (Args, stack config); `V`: the value after check (Inputs, state). */
export interface Field<A, V, C extends Change = Change> {
  change: C;
  /** One of the inputs the build id hashes (what decides the AWS objects a create makes). */
  buildId: boolean;
  /** The key in stack config; false: not settable there (internal). */
  config: string | false;
  /** May come from a secret config key as a secret; false for the names, regions and ids that key the stack's outputs. */
  secret: boolean;
  /** Fails with the field's name and the fix; `raw` for rules that read another field. */
  check(c: Checker, property: string, value: unknown, raw: Raw): void;
  /** The normalised value, once every check passed. */
  value(value: unknown, raw: Raw): V;
  /** Type only (the user's type). */
  readonly user?: A;
}

export type AnyField = Field<any, any, Change>; // eslint-disable-line @typescript-eslint/no-explicit-any
export type FieldTable = Record<string, AnyField>;

interface Options<V, C extends Change> {
  change: C;
  buildId?: boolean;
  config?: string | false;
  secret?: boolean;
  check?(c: Checker, property: string, value: unknown, raw: Raw): void;
  value?(value: unknown, raw: Raw): V;
}

/** A field with its own check; by default in the build id exactly when a change replaces. */
function of<A, V = A, C extends Change = Change>(o: Options<V, C>): Field<A, V, C> {
  return {
    change: o.change,
    buildId: o.buildId ?? o.change === "replace",
    config: o.config ?? (o.change === "internal" ? false : ""),
    secret: o.secret ?? o.change !== "internal",
    check: o.check ?? (() => undefined),
    value: o.value ?? ((v) => v as V),
  };
}

type Common<C extends Change> = Omit<Options<never, C>, "value" | "check"> & { check?: Options<never, C>["check"] };

export const field = {
  of,
  string: <A extends string | undefined = string | undefined, C extends Change = Change>(o: Common<C> & { required?: boolean; max?: number; pattern?: keyof typeof patterns }) =>
    of<A, A, C>({ ...o, check: (c, p, v, raw) => (c.string(p, v, { required: o.required, max: o.max, pattern: o.pattern }), o.check?.(c, p, v, raw)) }),
  /** `fallback`: the value when unset (absent: kept unset). */
  boolean: <V extends boolean | undefined = boolean, C extends Change = Change>(o: Common<C> & { fallback?: boolean }) =>
    of<boolean | undefined, V, C>({ ...o, check: (c, p, v, raw) => (c.boolean(p, v), o.check?.(c, p, v, raw)), value: (v) => (typeof v === "boolean" ? v : o.fallback) as V }),
  integer: <V extends number | undefined = number, C extends Change = Change>(o: Common<C> & { min: number; max: number; fallback?: number }) =>
    of<number | undefined, V, C>({ ...o, check: (c, p, v, raw) => (c.integer(p, v, o), o.check?.(c, p, v, raw)), value: (v) => (v ?? o.fallback) as V }),
  /** An id such as ami-…, region, i-…: required unless `optional`. */
  id: <A extends string | undefined = string, V extends string | undefined = string, C extends Change = Change>(kind: keyof typeof patterns, o: Common<C> & { optional?: boolean }) =>
    of<A, V, C>({ ...o, check: (c, p, v, raw) => (o.optional && v === undefined ? undefined : c.id(p, v, kind), o.check?.(c, p, v, raw)) }),
  /** One of a few strings; when unset `fallback`, a function of the other raw fields, or (undefined) unset. */
  oneOf: <T extends string, F extends T | undefined | ((raw: Raw) => T), C extends Change = Change>(values: readonly T[], o: Common<C> & { fallback: F; explain?: Partial<Record<T, string>> }) =>
    of<T | undefined, F extends undefined ? T | undefined : T, C>({
      ...o,
      check: (c, p, v, raw) => {
        if (v !== undefined && !isUnknown(v) && !values.includes(v as T)) {
          const listed = values.map((x) => `${JSON.stringify(x)}${o.explain?.[x] ? ` (${o.explain[x]})` : ""}`);
          const choice = listed.length === 1 ? listed[0] : `${listed.slice(0, -1).join(", ")} or ${listed[listed.length - 1]}`;
          c.fail(p, `${p} must be ${choice} (got ${JSON.stringify(v)})`);
        }
        o.check?.(c, p, v, raw);
      },
      value: (v, raw) => ((v as T | undefined) ?? (typeof o.fallback === "function" ? o.fallback(raw) : o.fallback)) as F extends undefined ? T | undefined : T,
    }),
  /** A list of ids, sorted and de-duplicated. */
  idList: <C extends Change = Change, A extends string[] | undefined = string[] | undefined>(kind: keyof typeof patterns, o: Common<C> & { required?: boolean; allow?: string[] }) =>
    of<A, string[], C>({ ...o, check: (c, p, v, raw) => (c.idList(p, v, kind, o), o.check?.(c, p, v, raw)), value: (v) => sortedUnique(v as string[] | undefined) }),
  tags: <C extends Change = Change>(o: Common<C>) =>
    of<Record<string, string> | undefined, Record<string, string>, C>({ ...o, check: (c, p, v) => c.tags(p, v), value: (v) => (v ?? {}) as Record<string, string> }),
  /** Set by the resource class, never by the user. */
  internal: <V>(value: (v: unknown) => V) => of<never, V, "internal">({ change: "internal", value }),
};

const names = (table: FieldTable, keep: (f: AnyField) => boolean) => Object.keys(table).filter((k) => keep(table[k]));

/** Every field the resource takes, in the table's order (a misspelt key is named against these). */
export const fieldNames = (table: FieldTable): string[] => Object.keys(table);
/** Fields whose change makes a new resource. */
export const replaceFields = (table: FieldTable): string[] => names(table, (f) => f.change === "replace");
/** Fields updated on the resource as it is. */
export const inPlaceFields = (table: FieldTable): string[] => names(table, (f) => f.change === "in-place");
/** The fields a build id hashes. */
export const buildIdFields = (table: FieldTable): string[] => names(table, (f) => f.buildId);

/** The build id's inputs: the named fields only, so that anything else the engine passes (`__provider`) never makes a new build. */
export function buildIdInputs(table: FieldTable, inputs: object): Record<string, unknown> {
  return Object.fromEntries(buildIdFields(table).map((f) => [f, (inputs as Raw)[f]]));
}

/** Checks every field (unknown keys first), in the table's order. */
export function checkFields(c: Checker, table: FieldTable, raw: Raw): void {
  c.knownKeys("", raw, fieldNames(table), names(table, (f) => f.change !== "internal"));
  for (const [name, f] of Object.entries(table)) f.check(c, name, raw[name], raw);
}

/** The normalised inputs (after checkFields found nothing). */
export function valuesOf<T extends FieldTable>(table: T, raw: Raw): InputsOf<T> {
  return Object.fromEntries(Object.entries(table).map(([name, f]) => [name, f.value(raw[name], raw)])) as InputsOf<T>;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** The fields of one kind of change whose value differs between the state and the new inputs. */
export function changedFields(table: FieldTable, change: Change, olds: object, news: object): string[] {
  return names(table, (f) => f.change === change).filter((k) => !same((olds as Raw)[k], (news as Raw)[k]));
}

// Stack config: the entry's `name` is the logical name (the key in the outputs); a field may be
// spelt otherwise there (an image's own `name` is `imageName`).
const configName = (table: FieldTable, name: string) => table[name].config || name;

/** The resource's raw inputs from a stack config entry (its logical name aside). */
export function fromConfig(table: FieldTable, entry: Raw): Raw {
  const { name: _logical, ...rest } = entry;
  const raw: Raw = { ...rest };
  for (const name of Object.keys(table)) {
    const spelt = configName(table, name);
    if (spelt === name || !(spelt in rest)) continue;
    delete raw[spelt];
    raw[name] = rest[spelt];
  }
  return raw;
}

/** A resource's failure in config terms: fields as config spells them, the logical name among the known fields. */
export function inConfigTerms(table: FieldTable, f: Failure): Failure {
  const [head, ...tail] = f.property.split(".");
  const spelt = head in table ? configName(table, head) : head;
  let reason = spelt !== head ? f.reason.replace(new RegExp(`^${head}\\b`), spelt) : f.reason;
  const known = /the known fields are (.*)$/.exec(reason);
  if (known && !tail.length) reason = reason.replace(known[1], ["name", ...known[1].split(", ").map((k) => (k in table ? configName(table, k) : k))].join(", "));
  return { property: [spelt, ...tail].join("."), reason };
}

/** Config keys (as config spells them) that stay plain under a secret config key. */
export function plainConfigFields(table: FieldTable): string[] {
  return ["name", ...names(table, (f) => f.config !== false && !f.secret).map((n) => configName(table, n))];
}

// ---- Types derived from a table ----

type ValueOf<F> = F extends Field<any, infer V, any> ? V : never; // eslint-disable-line @typescript-eslint/no-explicit-any
type UserOf<F> = F extends Field<infer A, any, any> ? A : never; // eslint-disable-line @typescript-eslint/no-explicit-any
type OptionalKeys<T> = { [K in keyof T]-?: undefined extends T[K] ? K : never }[keyof T];
type UserKeys<T> = { [K in keyof T]: T[K] extends Field<any, any, "internal"> ? never : K }[keyof T]; // eslint-disable-line @typescript-eslint/no-explicit-any
type Flat<T> = { [K in keyof T]: T[K] } & unknown;
/** Optional where undefined is a value, required otherwise (homomorphic, so each row's JSDoc carries over). */
type WithOptionals<T> = Flat<Pick<T, Exclude<keyof T, OptionalKeys<T>>> & Partial<Pick<T, OptionalKeys<T>>>>;

/** Every level may be an Output or a Promise, as Pulumi args are. */
export type DeepInput<T> = pulumi.Input<T extends (infer E)[] ? DeepInput<E>[] : T extends object ? { [K in keyof T]: DeepInput<T[K]> } : T>;

/** The checked inputs a provider keeps (and stores). */
export type InputsOf<T extends FieldTable> = WithOptionals<{ -readonly [K in keyof T]: ValueOf<T[K]> }>;
/** What the user gives, as plain values (stack config). */
export type PlainArgsOf<T extends FieldTable> = WithOptionals<Pick<{ -readonly [K in keyof T]: UserOf<T[K]> }, UserKeys<T>>>;
/** What the user gives, as Pulumi inputs (the resource's Args). */
export type ArgsOf<T extends FieldTable> = { [K in keyof PlainArgsOf<T>]: DeepInput<Exclude<PlainArgsOf<T>[K], undefined>> } & unknown;
