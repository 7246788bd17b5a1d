// Which instance types a new image is test-launched on, and whether a type can launch it at all.
// Pure: the decision is made from the guest script's facts and the registered image.

/** Current, small Nitro types (NVMe root disk, ENA network) per architecture. */
export const NITRO_TYPE = { x86_64: "t3.micro", arm64: "t4g.micro" } as const;
/**
 * The preferred Xen HVM type (a Xen block device root, no ENA needed) for images that are not
 * Nitro-ready; where the region does not offer it, xenTypeFor picks another Xen type it offers.
 */
export const XEN_TYPE = "t2.micro";

export interface ImageTraits {
  architecture: "x86_64" | "arm64";
  /** As registered (EnaSupport). */
  enaSupport: boolean;
  bootMode: "legacy-bios" | "uefi";
}

/**
 * Nitro-ready: the facts say so (`nitroReady`, when the guest script reports it), else the NVMe
 * driver is where the kernel finds its root (in the initramfs, or the kernel when the facts do not
 * say) and the ENA driver is there.
 */
export function isNitroReady(facts: Record<string, unknown> | undefined): { ready: boolean; why: string } {
  if (typeof facts?.nitroReady === "boolean") return { ready: facts.nitroReady, why: `the facts say nitroReady: ${facts.nitroReady}` };
  const nvme = typeof facts?.nvmeInInitramfs === "boolean" ? facts.nvmeInInitramfs : facts?.nvmeDriver;
  const ena = facts?.enaDriver;
  const ready = nvme === true && ena === true;
  return { ready, why: `NVMe driver${typeof facts?.nvmeInInitramfs === "boolean" ? " in the initramfs" : ""}: ${nvme ?? "unknown"}, ENA driver: ${ena ?? "unknown"}` };
}

/** The instance types to verify on: the user's, else one chosen from the facts, with why. */
export function verifyInstanceTypes(asked: string[] | undefined, facts: Record<string, unknown> | undefined, image: ImageTraits): { types: string[]; why: string } {
  if (asked?.length) return { types: asked, why: "as asked (verify.instanceType)" };
  const nitro = isNitroReady(facts);
  const enaOk = image.enaSupport ? "" : " (registered without ENA)";
  if (nitro.ready && image.enaSupport) return { types: [NITRO_TYPE[image.architecture]], why: `Nitro-ready: ${nitro.why}` };
  if (image.architecture === "x86_64" && image.bootMode === "legacy-bios") {
    return { types: [XEN_TYPE], why: `not Nitro-ready${enaOk}: ${nitro.why}; a Xen HVM type boots it from a Xen disk` };
  }
  // arm64 and UEFI images run on Nitro types only: verify there, even if it is likely to fail.
  return { types: [NITRO_TYPE[image.architecture]], why: `not Nitro-ready${enaOk} (${nitro.why}), but ${image.architecture === "arm64" ? "arm64" : "UEFI"} images run on Nitro types only` };
}

/** What DescribeInstanceTypes says of a type, as far as launching an image goes. */
export interface TypeInfo {
  instanceType: string;
  hypervisor?: string;
  architectures: string[];
  /** "required" | "supported" | "unsupported" */
  enaSupport?: string;
  bootModes: string[];
  vcpus?: number;
  memoryMiB?: number;
}

/** Why this type cannot launch the image, or undefined when it can. */
export function cannotLaunch(image: ImageTraits, t: TypeInfo): string | undefined {
  if (t.architectures.length && !t.architectures.includes(image.architecture)) return `${t.instanceType} runs ${t.architectures.join("/")}, not ${image.architecture}`;
  if (t.enaSupport === "required" && !image.enaSupport) return `${t.instanceType} needs ENA and the image is registered without it (enaSupport)`;
  if (t.bootModes.length && !t.bootModes.includes(image.bootMode)) return `${t.instanceType} boots ${t.bootModes.join("/")}, not ${image.bootMode}`;
  return undefined;
}

/**
 * The Xen type to verify a not Nitro-ready image on, from the Xen types the region offers
 * (DescribeInstanceTypes hypervisor=xen, DescribeInstanceTypeOfferings): XEN_TYPE when offered, else
 * the smallest one that can launch the image; or why there is none.
 */
export function xenTypeFor(image: ImageTraits, offered: TypeInfo[], region: string): { type: string; why: string } | { error: string } {
  const usable = offered.filter((t) => !cannotLaunch(image, t));
  if (usable.some((t) => t.instanceType === XEN_TYPE)) return { type: XEN_TYPE, why: `${XEN_TYPE} (Xen) is offered in ${region}` };
  const size = (t: TypeInfo) => [t.vcpus ?? Infinity, t.memoryMiB ?? Infinity];
  const smallest = [...usable].sort((a, b) => size(a)[0] - size(b)[0] || size(a)[1] - size(b)[1] || a.instanceType.localeCompare(b.instanceType))[0];
  if (smallest) return { type: smallest.instanceType, why: `${XEN_TYPE} is not offered in ${region}: ${smallest.instanceType}, the smallest Xen type it offers that can launch the image` };
  const seen = offered.length ? `the Xen types it offers (${offered.map((t) => t.instanceType).slice(0, 6).join(", ")}${offered.length > 6 ? ", …" : ""}) cannot launch it (${cannotLaunch(image, offered[0])})` : "it offers no Xen instance type";
  return { error: `the image is not Nitro-ready, so it runs on Xen instance types only, and ${region} has none for it: ${seen}. Convert it Nitro-ready (nitro: true, an NVMe driver and ENA in the image), verify it elsewhere with verify.instanceType, or set verify: false` };
}
