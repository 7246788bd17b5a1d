// ami-factory: reads the `ami-factory:` stack config, declares the image resources, exports
//   images: name → region → AMI id      alarms: name → { alarmName, alarmArn, instanceId }
// Other stacks read these through a StackReference (see examples/consumer).
import * as pulumi from "@pulumi/pulumi";
import { ConvertedHvmAmi, RecoveryAlarm, SharedAmi, StackLifetime, SurrogateAmi } from "./providers";
import { isSecretConfigKey, redactSecrets, secretEntry } from "./providers/configSecrets";
import { defaultRegion } from "./providers/core/resource";
import { parseStackConfig, StackConfig, StackConfigError } from "./providers/stackConfig";

function readConfig(): StackConfig {
  try {
    return parseStackConfig(pulumi.getStack(), pulumi.runtime.allConfig(), defaultRegion());
  } catch (e) {
    // RunError: the engine shows just the message, not a stack trace of the program.
    if (e instanceof StackConfigError) throw new pulumi.RunError(redactSecrets(e.message, pulumi.runtime.allConfig()));
    throw e;
  }
}

function main() {
  const config = readConfig();
  // Entries of a key set with `pulumi config set --secret` stay secret inputs (configSecrets.ts).
  const secret = (key: string) => isSecretConfigKey(`ami-factory:${key}`);

  // Declared in every up, even with no image: only `pulumi destroy` of the whole stack deletes it,
  // after every image (they depend on it), and its delete turns the images retired by that destroy
  // into deleted ones (providers/core/stackDestroy.ts). A removed entry or a replacement retires.
  // Never rename it (use `aliases`): a renamed marker's old one would be deleted during an up, and
  // would delete the images that up retired for removed entries.
  const lifetime = { dependsOn: [new StackLifetime("destroy-deletes-images")] };

  const images: Record<string, pulumi.Output<Record<string, string>>> = {};
  for (const share of config.shares) {
    const { name, imageName, ...args } = secretEntry(share, secret("shares"));
    images[name] = new SharedAmi(name, { ...args, name: imageName }, lifetime).imageIds;
  }

  for (const conversion of config.conversions) {
    const { name, imageName, ...args } = secretEntry(conversion, secret("conversions"));
    const image = new ConvertedHvmAmi(name, { ...args, name: imageName }, lifetime);
    images[name] = pulumi.all([image.region, image.imageId]).apply(([region, imageId]) => ({ [region]: imageId }));
  }

  for (const build of config.builds) {
    const { name, imageName, ...args } = secretEntry(build, secret("builds"));
    const image = new SurrogateAmi(name, { ...args, name: imageName }, lifetime);
    images[name] = pulumi.all([image.region, image.imageId]).apply(([region, imageId]) => ({ [region]: imageId }));
  }

  const alarms: Record<string, pulumi.Output<{ alarmName: string; alarmArn: string; instanceId: string }>> = {};
  for (const { name, ...args } of config.recoveryAlarms.map((a) => secretEntry(a, secret("recoveryAlarms")))) {
    const alarm = new RecoveryAlarm(name, args);
    alarms[name] = pulumi.all([alarm.alarmName, alarm.alarmArn, alarm.instanceId]).apply(([alarmName, alarmArn, instanceId]) => ({ alarmName, alarmArn, instanceId }));
  }

  return { images, alarms };
}

export = main;
