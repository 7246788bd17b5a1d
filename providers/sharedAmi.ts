import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider, thinProvider } from "./core/provider";
import { defaultRegion, outputSlots, scopeOf } from "./core/resource";
import type { ArgsOf } from "./core/fields";
import { checkSharedAmi, SharedAmiInputs, SharedAmiOutputs } from "./sharedAmi/inputs";
import type { SHARED_AMI_FIELDS } from "./sharedAmi/fields";
import { diffSharedAmi } from "./sharedAmi/diff";
import { upgradeSharedAmi } from "./sharedAmi/upgrade";
import { createSharedAmi, deleteSharedAmi, readSharedAmi, updateSharedAmi } from "./sharedAmi/operations";

/** The args of a SharedAmi: each is documented, with its default, in ./sharedAmi/fields.ts. */
export type SharedAmiArgs = ArgsOf<typeof SHARED_AMI_FIELDS>;

const OUTPUTS = ["imageIds", "snapshotIds", "copiedRegions", "imageName", "buildId", "schemaVersion"] as const;

/** The implementation, loaded in the provider process by the thin provider below. */
export const sharedAmiProvider = dynamicProvider<SharedAmiInputs, SharedAmiOutputs>({
  kind: "SharedAmi",
  check: checkSharedAmi,
  diff: diffSharedAmi,
  create: createSharedAmi,
  update: updateSharedAmi,
  delete: deleteSharedAmi,
  read: readSharedAmi,
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
  /** Regions whose image is a copy made (and deleted) by this resource. */
  declare readonly copiedRegions: pulumi.Output<string[]>;
  declare readonly imageName: pulumi.Output<string>;

  constructor(name: string, args: SharedAmiArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      serializedProvider,
      name,
      { ...outputSlots(OUTPUTS), ...args, sourceRegion: args.sourceRegion ?? defaultRegion(), scope: scopeOf(name) },
      opts,
      "ami-factory",
      "SharedAmi",
    );
  }
}
