import * as pulumi from "@pulumi/pulumi";
import { dynamicProvider, thinProvider } from "./core/provider";
import { defaultRegion, outputSlots, scopeOf } from "./core/resource";
import { checkSharedAmi, SharedAmiInputs } from "./sharedAmi/inputs";
import { diffSharedAmi } from "./sharedAmi/diff";
import { createSharedAmi, deleteSharedAmi, readSharedAmi } from "./sharedAmi/operations";
import { updateSharedAmi } from "./sharedAmi/update";
import { copiedRegionsOf, fromState, StoredSharedAmi, toState } from "./sharedAmi/state";

export interface SharedAmiArgs {
  /** The image to copy and share. */
  sourceAmiId: pulumi.Input<string>;
  /** Where the source image lives. Default: `aws:region`, else AWS_REGION. */
  sourceRegion?: pulumi.Input<string>;
  /** Regions that get the image. The source region itself means "share the source in place" (unless `encrypted`). */
  regions: pulumi.Input<pulumi.Input<string>[]>;
  /** Accounts allowed to launch the image. `"all"` makes it public and needs `allowPublic`. Default: none. */
  accountIds?: pulumi.Input<pulumi.Input<string>[]>;
  /** Organizations (ARNs) allowed to launch the image. Default: none. */
  organizationArns?: pulumi.Input<pulumi.Input<string>[]>;
  /** Organizational units (ARNs) allowed to launch the image. Default: none. */
  organizationalUnitArns?: pulumi.Input<pulumi.Input<string>[]>;
  /** Must be true for `accountIds: ["all"]`. Default: false. */
  allowPublic?: pulumi.Input<boolean>;
  /** Also grant createVolumePermission on the snapshots to the same accounts. Default: true. */
  shareSnapshots?: pulumi.Input<boolean>;
  /** Encrypt the copies (also copies in the source region). Default: false (copies keep the source's encryption). */
  encrypted?: pulumi.Input<boolean>;
  /** region → KMS key for the copies there. Default: the account's default EBS key. */
  kmsKeyIds?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Name of the copies. Default: the source image's name. A build stamp is added unless `exactName`. */
  name?: pulumi.Input<string>;
  /**
   * Copy with exactly `name`. Default: false, copies are named `name-20261126T101005Z` so that a
   * replacement copies before it deletes. With true, a replacement deletes the old copies first.
   */
  exactName?: pulumi.Input<boolean>;
  /** Description of the copies. Default: none. */
  description?: pulumi.Input<string>;
  /** Tags for the copies and their snapshots. Default: none (provenance tags are always added). */
  tags?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** When the copies are deprecated (ISO 8601). Default: never. */
  deprecateAt?: pulumi.Input<string>;
  /** How long copying may take before the create fails and cleans up. Default: 120. */
  timeoutMinutes?: pulumi.Input<number>;
}

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
    return { id: found.id, props: toState(found.props) };
  },
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
    super(
      serializedProvider,
      name,
      { ...outputSlots(OUTPUTS), ...args, sourceRegion: args.sourceRegion ?? defaultRegion(), scope: scopeOf(name) },
      opts,
      "ami-factory",
      "SharedAmi",
    );
    this.copiedRegions = pulumi.all([this.imageIds, args.sourceAmiId]).apply(([ids, source]) => copiedRegionsOf(ids, source));
  }
}
