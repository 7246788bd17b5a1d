// What every ami-factory resource does the same way at declaration time.
import * as pulumi from "@pulumi/pulumi";
import { progressFor, Progress } from "./progress";

/** project/stack/name: the scope that makes a resource's build ids its own. */
export function scopeOf(name: string): string {
  return `${pulumi.getProject()}/${pulumi.getStack()}/${name}`;
}

/** The region a resource works in when its args name none: `aws:region`, else AWS_REGION. */
export function defaultRegion(): string | undefined {
  return new pulumi.Config("aws").get("region") ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION;
}

/** A logger for provider progress, attached to the resource in the engine's display (./progress.ts). */
export function progressLog(kind: string, scope: string): Progress {
  return progressFor(kind, scope);
}

/** Output property names declared as undefined inputs, so the engine records them as outputs. */
export function outputSlots(names: readonly string[]): Record<string, undefined> {
  return Object.fromEntries(names.map((n) => [n, undefined]));
}

/** A copy without undefined values: the engine's wire format (protobuf Struct) has no undefined. */
export function compact<T extends object>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
