// An HTTP proxy in front of the emulator that holds the AWS calls whose body matches `hold` until
// the test opens the gate: a way to keep an operation in flight, at a known step, for as long as a
// test needs (e.g. while a second `pulumi up` meets the first one's lock). Node built-ins only.
import * as http from "http";
import type { AddressInfo } from "net";

export interface GateProxy {
  url: string;
  /** Resolves when the first held call has arrived. */
  holding: Promise<void>;
  /** Lets every held call (and all later ones) through. */
  open(): void;
  stop(): Promise<void>;
}

export async function startGateProxy(target: string, hold: RegExp): Promise<GateProxy> {
  let open = false;
  let opened!: () => void;
  const gate = new Promise<void>((r) => (opened = r));
  let held!: () => void;
  const holding = new Promise<void>((r) => (held = r));
  const upstream = new URL(target);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", async () => {
      const body = Buffer.concat(chunks);
      if (!open && hold.test(body.toString("utf8"))) {
        held();
        await gate;
      }
      const out = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      out.on("error", (e) => res.destroy(e));
      out.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    holding,
    open() {
      open = true;
      opened();
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
