// The cost of a ConvertedHvmAmi conversion on EC2 against the root's size, on paper: `dd` of the
// whole disk, the copy of the used blocks (pv2hvm --source/--target) and the conversion in place
// (pv2hvm --in-place), from AWS's documented behaviour of volumes restored from snapshots and of
// incremental snapshots. Pure arithmetic on the figures below; no AWS, nothing measured.
//
//   bash scripts/local/with-toolchain.sh node -r ts-node/register bench/costModel.ts
//
// What is counted: the guest step (reading the source volume, writing the root) and the new
// snapshot. Worker launch, volume creation, RegisterImage and the launch verification cost the same
// for every method and are left out.

/** Each figure, with where it comes from. */
export const FIGURES = {
  /**
   * A volume created from a snapshot gets its blocks from Amazon S3 on first access ("volume
   * initialization": increased I/O latency until every block is downloaded); the default rate
   * "fluctuates" and is not documented. Its floor here is the lowest rate one can buy.
   * https://docs.amazonaws.cn/en_us/ebs/latest/userguide/initalize-volume.md (the AWS EBS User Guide, China mirror)
   */
  lazyLoad: "first read of each block comes from S3",
  /**
   * Amazon EBS Provisioned Rate for Volume Initialization: "Valid range: 100 - 300 MiB/s".
   * https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ec2/aws.sdk.kotlin.services.ec2.model/-create-volume-request/volume-initialization-rate.html
   */
  provisionedInitMiBps: { min: 100, max: 300 },
  /**
   * Fast snapshot restore: the volume "is fully initialized at creation" (same page); enabling it
   * "takes 60 minutes per TiB to optimize a snapshot"
   * (https://docs.amazonaws.cn/en_us/ebs/latest/userguide/view-fsr-enabled-snapshots.html), not counted here.
   */
  fastSnapshotRestore: "fully initialized at creation",
  /**
   * gp3 throughput: "Valid Range: Minimum value of 125", and 125 MiB/s when not given
   * (https://docs.aws.amazon.com/sdk-for-kotlin/api/latest/ec2/aws.sdk.kotlin.services.ec2.model/-modify-volume-request/throughput.html);
   * ami-factory's worker volumes are gp3 at the default.
   */
  gp3BaselineMiBps: 125,
  /**
   * Snapshots store only the blocks written since the last one: "Subsequent snapshots of the same
   * volume are incremental … only changed and new data blocks", and a full snapshot's size "is
   * determined by the size of the data being backed up, not the size of the source volume".
   * https://docs.amazonaws.cn/en_us/ebs/latest/userguide/how_snapshots_work.html
   * ASSUMED (the premise of issue 12, not found stated in AWS's pages): a snapshot of a volume
   * created from snapshot S stores only the blocks changed since S.
   */
  incrementalSnapshots: "changed blocks only",
  /**
   * ASSUMED: AWS documents no snapshot creation rate, only that incremental snapshots take less time
   * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/EBSSnapshots.html: "This minimizes the time
   * required to create the snapshot"). Taken as proportional to the blocks it stores, at the gp3
   * baseline rate.
   */
  snapshotMiBps: 125,
  /** ASSUMED, as issue 12 states it: the root filesystem is 25% full. */
  usedFraction: 0.25,
  /**
   * ASSUMED for the conversion in place: what it reads (superblock, boot menu, the default kernel's
   * modules and initramfs tools) and writes (boot sector, GRUB's core image, grub.cfg, fstab, a
   * rebuilt initramfs); neither grows with the disk. The guest bench measures bytesWritten.
   */
  inPlaceReadMiB: 256,
  inPlaceWrittenMiB: 64,
} as const;

export type Method = "dd" | "copy" | "in-place";
export const METHODS: Method[] = ["dd", "copy", "in-place"];

/** How fast blocks of the source volume are read the first time: a provisioned initialization rate, or fast snapshot restore. */
export interface Scenario {
  name: string;
  /** MiB/s of first reads from the source volume (S3 behind it); Infinity when already initialized. */
  initMiBps: number;
}

export const SCENARIOS: Scenario[] = [
  { name: `lazy load at ${FIGURES.provisionedInitMiBps.min} MiB/s (lowest provisioned rate)`, initMiBps: FIGURES.provisionedInitMiBps.min },
  { name: "fast snapshot restore (initialized at creation)", initMiBps: Infinity },
];

export interface Cost {
  /** MiB read from the source volume. */
  readMiB: number;
  /** MiB written to the image's root volume, and stored by its new snapshot. */
  writtenMiB: number;
  /** Minutes: the guest step plus the snapshot. */
  minutes: number;
}

/**
 * One conversion of a `rootGiB` root. Reads go at the slower of the first-read rate and the gp3
 * baseline, writes at the gp3 baseline; the guest step streams, so it lasts as long as its slower
 * side. `dd` reads and writes the whole disk; the copy the used blocks; in place a fixed amount.
 */
export function conversionCost(method: Method, rootGiB: number, scenario: Scenario, f = FIGURES): Cost {
  const rootMiB = rootGiB * 1024;
  const [readMiB, writtenMiB] =
    method === "dd" ? [rootMiB, rootMiB]
    : method === "copy" ? [rootMiB * f.usedFraction, rootMiB * f.usedFraction]
    : [Math.min(f.inPlaceReadMiB, rootMiB), Math.min(f.inPlaceWrittenMiB, rootMiB)];
  const readSeconds = readMiB / Math.min(scenario.initMiBps, f.gp3BaselineMiBps);
  const writeSeconds = writtenMiB / f.gp3BaselineMiBps;
  const snapshotSeconds = writtenMiB / f.snapshotMiBps;
  return { readMiB, writtenMiB, minutes: (Math.max(readSeconds, writeSeconds) + snapshotSeconds) / 60 };
}

export const ROOT_SIZES_GIB = [8, 64, 200, 512, 1024];

/** The table README shows: minutes per method and root size, per scenario, and the snapshot each stores. */
export function costTable(): string {
  const rows: string[] = ["| root | scenario | dd | copy (25% used) | in place | copy ÷ in place | new snapshot stores (dd / copy / in place) |", "|---|---|---|---|---|---|---|"];
  const min = (m: number) => (m < 1 ? `${Math.round(m * 60)} s` : m < 10 ? `${m.toFixed(1)} min` : `${Math.round(m)} min`);
  const size = (mib: number) => (mib >= 1024 ? `${(mib / 1024).toFixed(0)} GiB` : `${mib.toFixed(0)} MiB`);
  for (const rootGiB of ROOT_SIZES_GIB) {
    for (const s of SCENARIOS) {
      const [dd, copy, inPlace] = METHODS.map((m) => conversionCost(m, rootGiB, s));
      const label = rootGiB >= 1024 ? `${rootGiB / 1024} TiB` : `${rootGiB} GiB`;
      rows.push(`| ${label} | ${s.initMiBps === Infinity ? "fast snapshot restore" : `${s.initMiBps} MiB/s first reads`} | ${min(dd.minutes)} | ${min(copy.minutes)} | ${min(inPlace.minutes)} | ${(copy.minutes / inPlace.minutes).toFixed(0)}× | ${size(dd.writtenMiB)} / ${size(copy.writtenMiB)} / ${size(inPlace.writtenMiB)} |`);
    }
  }
  return rows.join("\n");
}

if (require.main === module) {
  console.log("ConvertedHvmAmi on EC2, on paper: the guest step and the new snapshot, per method and root size");
  console.log(`figures: first reads ${FIGURES.provisionedInitMiBps.min} MiB/s (lowest Provisioned Rate for Volume Initialization) or fast snapshot restore; gp3 ${FIGURES.gp3BaselineMiBps} MiB/s;`);
  console.log(`assumed: snapshot ${FIGURES.snapshotMiBps} MiB/s of stored blocks, ${FIGURES.usedFraction * 100}% used, in place reads ${FIGURES.inPlaceReadMiB} MiB and writes ${FIGURES.inPlaceWrittenMiB} MiB (sources: bench/costModel.ts)`);
  console.log(costTable());
}
