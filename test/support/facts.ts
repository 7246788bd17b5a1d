// The facts lines the guest scripts print, as the emulator's recorded SSM answers give them to the
// provider: one copy per script schema (scripts/guest/pv2hvm.sh and surrogate.sh "# @facts").

/** What pv2hvm.sh (facts schema 2) prints for a whole-disk ext4 source made Nitro-ready. */
export const PV2HVM_FACTS = {
  script: "pv2hvm", schemaVersion: 2, partitioned: false, layout: "flat", fsType: "ext4", kernels: ["6.1.0-18-amd64"], defaultKernel: "6.1.0-18-amd64",
  bootMenu: "menu.lst", enaDriver: true, nvmeDriver: true, enaInInitramfs: true, nvmeInInitramfs: true, ixgbevfDriver: false, initramfsUpdatedWith: "",
  nitroReady: true, fstabRemoved: [] as string[], fstabNofail: [] as string[], copiedBytes: 1234567, seconds: 42, sanitized: true,
  rootUuid: "2166919c-d40e-4ab9-9838-e551b4ca33d9", rootLabel: "/", copyMethod: "e2image -ra",
};

/** What surrogate.sh (facts schema 1) prints for a debian recipe booted by UEFI. */
export const SURROGATE_FACTS = {
  script: "surrogate", schemaVersion: 1, recipe: "debian", bootMode: "uefi", partitionTable: "gpt", fsType: "ext4", rootUuid: "0b1c", rootLabel: "root",
  kernels: ["6.1.0-28-amd64"], defaultKernel: "6.1.0-28-amd64", enaDriver: true, nvmeDriver: true, enaInInitramfs: true, nvmeInInitramfs: true,
  cloudInit: true, warnings: [] as string[], sanitized: true, seconds: 300,
};
