import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider, thinProvider } from "./core/provider";
import { defaultRegion, outputSlots, scopeOf, suspendStackTraces } from "./core/resource";
import type { ArgsOf } from "./core/fields";
import { checkSharedAmi, SharedAmiInputs } from "./sharedAmi/inputs";
import type { SHARED_AMI_FIELDS } from "./sharedAmi/fields";
import { diffSharedAmi } from "./sharedAmi/diff";
import { upgradeSharedAmi } from "./sharedAmi/upgrade";
import { createSharedAmi, deleteSharedAmi, readSharedAmi } from "./sharedAmi/operations";
import { updateSharedAmi } from "./sharedAmi/update";
import { copiedRegionsOf, fromState, StoredSharedAmi, toState } from "./sharedAmi/state";

/** The args of a SharedAmi: each is documented, with its default, in ./sharedAmi/fields.ts. */
export type SharedAmiArgs = ArgsOf<typeof SHARED_AMI_FIELDS>;

const OUTPUTS = ["imageIds", "snapshotIds", "imageName", "buildId", "schemaVersion"] as const;

/** The implementation, loaded in the provider process by the thin provider below. */
export const sharedAmiProvider = dynamicProvider<SharedAmiInputs, StoredSharedAmi>({
  kind: "SharedAmi",
  check: checkSharedAmi,
  diff: (olds, news) => diffSharedAmi(fromState(olds), news),
  create: async (inputs, log) => {
    const { id, outs } = await createSharedAmi(inputs, log);
    return { id, outs: toState(outs) };
  },
  update: async (olds, news, log) => toState(await updateSharedAmi(fromState(olds), news, log)),
  delete: (olds, log) => deleteSharedAmi(fromState(olds), log),
  read: async (id, olds) => {
    const found = await readSharedAmi(id, fromState(olds));
    return { id: found.id, props: found.props && toState(found.props) };
  },
  upgrade: upgradeSharedAmi,
});

/** What each SharedAmi stores as its provider (a few hundred bytes, see thinProvider). */
const serializedProvider = thinProvider("SharedAmi");

/** An image copied to regions and shared with accounts, organizations and OUs. */
export class SharedAmi extends pulumi.dynamic.Resource {
  /** region → image id (the source itself where shared in place). */
  declare readonly imageIds: pulumi.Output<Record<string, string>>;
  /** region → snapshot ids behind that image. */
  declare readonly snapshotIds: pulumi.Output<Record<string, string[]>>;
  /** Regions whose image is a copy made (and deleted) by this resource (derived, not stored). */
  readonly copiedRegions: pulumi.Output<string[]>;
  declare readonly imageName: pulumi.Output<string>;

  constructor(name: string, args: SharedAmiArgs, opts?: pulumi.CustomResourceOptions) {
    const stacks = suspendStackTraces();
    try {
      super(
        serializedProvider,
        name,
        { ...outputSlots(OUTPUTS), ...args, sourceRegion: args.sourceRegion ?? defaultRegion(), scope: scopeOf(name) },
        opts,
        "ami-factory",
        "SharedAmi",
      );
    } catch (e) {
      throw stacks.restack(e);
    } finally {
      stacks.resume();
    }
    this.copiedRegions = pulumi.all([this.imageIds, args.sourceAmiId]).apply(([ids, source]) => copiedRegionsOf(ids, source));
  }
}
