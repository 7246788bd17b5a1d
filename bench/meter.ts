// What the benchmark measures around an engine operation, from outside the code it measures:
// AWS calls and the peak of requests in flight (an HTTP proxy between the SDK and the emulator,
// or the fault proxy), and the peak memory of the dynamic-provider processes (their VmHWM in /proc,
// found by a marker in their environment, so other engines on the machine do not count).
import * as fs from "fs";
import * as http from "http";
import type { AddressInfo } from "net";

export interface CallMeter {
  url: string;
  reset(): void;
  read(): { calls: number; peakInFlight: number };
  stop(): Promise<void>;
}

export async function startCallMeter(target: string): Promise<CallMeter> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let calls = 0;
  let inFlight = 0;
  let peak = 0;
  const server = http.createServer((req, res) => {
    const control = /^\/(_ami_factory|moto-api)\//.test(req.url ?? "");
    if (!control) {
      calls++;
      peak = Math.max(peak, ++inFlight);
    }
    const done = () => {
      if (!control) inFlight--;
    };
    const forward = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
      up.on("end", done);
      up.on("error", done);
    });
    forward.on("error", (e) => {
      done();
      res.writeHead(502);
      res.end(e.message);
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  server.unref();
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    reset: () => {
      calls = 0;
      peak = inFlight;
    },
    read: () => ({ calls, peakInFlight: peak }),
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Peak resident memory (MiB) and CPU seconds (user + system, summed) of the dynamic-provider
 * processes whose environment holds `marker=value`, sampled until stopped. CPU seconds suffer less
 * than wall time from other load on the machine.
 */
export function watchProviders(marker: string, value: string): { stop(): { peakMiB: number; cpuSeconds: number } } {
  const peakByPid = new Map<number, number>();
  const cpuByPid = new Map<number, number>();
  const ticks = 100; // USER_HZ on Linux
  const needle = `${marker}=${value}`;
  const sample = () => {
    for (const entry of fs.readdirSync("/proc")) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
        if (!cmd.includes("dynamic-provider")) continue;
        if (!fs.readFileSync(`/proc/${entry}/environ`, "utf8").split("\0").includes(needle)) continue;
        const hwm = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${entry}/status`, "utf8"));
        if (hwm) peakByPid.set(Number(entry), Math.max(peakByPid.get(Number(entry)) ?? 0, Number(hwm[1]) / 1024));
        const stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        cpuByPid.set(Number(entry), (Number(fields[11]) + Number(fields[12])) / ticks);
      } catch {
        // the process ended between listing and reading
      }
    }
  };
  const timer = setInterval(sample, 200);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return { peakMiB: Math.max(0, ...peakByPid.values()), cpuSeconds: [...cpuByPid.values()].reduce((a, b) => a + b, 0) };
    },
  };
}
