// A bootable disk image for the SurrogateAmi `image` recipe on the twin: the converted HVM disk of
// test/support/twinDisks.ts as a compressed qcow2 (what a recipe downloads: a few hundred MiB, not
// the 1 GiB raw disk), made once with qemu-img next to it in the cache (its name starts with the
// twin disks' key, so it goes when they are rebuilt), with its SHA-256.
import * as crypto from "crypto";
import * as fs from "fs";
import { must } from "./host";
import { twinDisks } from "./twinDisks";

export interface TwinImageDisk {
  file: string;
  sha256: string;
  bytes: number;
}

function sha256Of(file: string): string {
  const h = crypto.createHash("sha256");
  const fd = fs.openSync(file, "r");
  try {
    const buf = Buffer.alloc(8 * 1024 * 1024);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest("hex");
}

export function twinImageDisk(log: (line: string) => void = () => undefined): TwinImageDisk {
  const { hvm } = twinDisks(log);
  const file = hvm.replace(/\.vmdk$/, ".qcow2");
  if (!fs.existsSync(file)) {
    log(`twin image disk: converting ${hvm} to a compressed qcow2`);
    must("qemu-img", ["convert", "-q", "-c", "-f", "vmdk", "-O", "qcow2", hvm, `${file}.tmp`]);
    fs.renameSync(`${file}.tmp`, file);
  }
  return { file, sha256: sha256Of(file), bytes: fs.statSync(file).size };
}
