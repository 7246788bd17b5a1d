// Finding and killing the engine's processes, for crash tests (Linux /proc).
import * as fs from "fs";

function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
  } catch {
    return "";
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

function pids(): number[] {
  return fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map(Number);
}

/** The process whose command line contains every one of `parts`, and all its descendants. */
export function processTree(parts: string[]): number[] {
  const all = pids();
  const root = all.find((p) => {
    const c = cmdline(p);
    return parts.every((x) => c.includes(x));
  });
  if (root === undefined) return [];
  const tree = [root];
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      const parent = parentOf(p);
      if (parent !== undefined && tree.includes(parent) && !tree.includes(p)) {
        tree.push(p);
        grew = true;
      }
    }
  }
  return tree;
}

/** kill -9, as a machine crash would: no process gets to clean up. */
export function killHard(tree: number[]): void {
  for (const p of tree) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // already gone
    }
  }
}
