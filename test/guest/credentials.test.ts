// A mirror's credentials stay out of the image and the guest's log (scripts/guest/surrogate/debian.sh):
// the image's sources.list names the mirror without user:password@.
import * as assert from "assert";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { must } from "../support/host";

const guest = path.resolve(__dirname, "../../scripts/guest");
const PASSWORD = "pw-0451-secret";

function inDebianLib(script: string, env: NodeJS.ProcessEnv = {}): string {
  return must("bash", ["-c", `set -euo pipefail; . '${guest}/lib/common.sh'; . '${guest}/lib/secrets.sh'; . '${guest}/surrogate/debian.sh'; ${script}`], { env });
}

describe("debian recipe: a mirror with credentials", function () {
  let root: string;
  before(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), "debian-sources-"));
    fs.mkdirSync(path.join(root, "etc/apt"), { recursive: true });
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it("writes the image's sources.list without them", () => {
    inDebianLib(`debian_apt_sources "$ROOT" "https://builder:${PASSWORD}@mirror.example.com/debian" bookworm`, { ROOT: root });
    assert.strictEqual(fs.readFileSync(path.join(root, "etc/apt/sources.list"), "utf8"), "deb https://mirror.example.com/debian bookworm main\n");
  });

  it("names the mirror without them (the log line), and leaves a URL without credentials as it is", () => {
    assert.strictEqual(inDebianLib(`plain_url "http://u:${PASSWORD}@m.example/debian"`), "http://m.example/debian\n");
    assert.strictEqual(inDebianLib(`plain_url "http://deb.debian.org/debian"`), "http://deb.debian.org/debian\n");
    assert.strictEqual(inDebianLib(`plain_url "file:///srv/mirror"`), "file:///srv/mirror\n");
  });
});
