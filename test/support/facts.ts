// The facts lines the guest scripts print, as the emulator's recorded SSM answers give them to the
// provider: one copy per script schema (scripts/guest/pv2hvm.sh and surrogate.sh "# @facts").

/** What pv2hvm.sh (facts schema 4) prints for a whole-disk ext4 source converted in place, Nitro-ready. */
export const PV2HVM_FACTS = {
  script: "pv2hvm", schemaVersion: 4, partitioned: false, layout: "flat", fsType: "ext4", kernels: ["6.1.0-18-amd64"], defaultKernel: "6.1.0-18-amd64",
  bootMenu: "menu.lst", enaDriver: true, nvmeDriver: true, enaInInitramfs: true, nvmeInInitramfs: true, ixgbevfDriver: false, initramfsUpdatedWith: "",
  nitroReady: true, fstabRemoved: [] as string[], fstabNofail: [] as string[], copiedBytes: 0, seconds: 42, sanitized: true,
  rootUuid: "2166919c-d40e-4ab9-9838-e551b4ca33d9", rootLabel: "/", copyMethod: "none", method: "in-place", bytesWritten: 1867776, inPlaceLayout: "bare-ext-blocklist", grubInstallGuard: "dpkg-divert",
};

/** The same source converted by the copy (`--source … --target …`, or `auto` after a refusal). */
export const PV2HVM_COPY_FACTS = { ...PV2HVM_FACTS, copiedBytes: 1234567, copyMethod: "e2image -ra", method: "copy", bytesWritten: 1300234240, inPlaceLayout: "", grubInstallGuard: "" };

/** The last stdout line of `pv2hvm.sh --in-place` when the layout does not allow it (exit 3, nothing written). */
export const PV2HVM_REFUSAL = {
  script: "pv2hvm", schemaVersion: 4, refused: "in-place", reason: "xfs-at-sector-0",
  detail: "XFS on the whole of /dev/nvme1n1 has its superblock in sector 0, where BIOS boot code must go: the root has to be copied to a partitioned disk",
};

/** What surrogate.sh (facts schema 1) prints for a debian recipe booted by UEFI. */
export const SURROGATE_FACTS = {
  script: "surrogate", schemaVersion: 1, recipe: "debian", bootMode: "uefi", partitionTable: "gpt", fsType: "ext4", rootUuid: "0b1c", rootLabel: "root",
  kernels: ["6.1.0-28-amd64"], defaultKernel: "6.1.0-28-amd64", enaDriver: true, nvmeDriver: true, enaInInitramfs: true, nvmeInInitramfs: true,
  cloudInit: true, warnings: [] as string[], sanitized: true, seconds: 300,
};
