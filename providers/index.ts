export { SharedAmi, SharedAmiArgs } from "./sharedAmi";
export { RecoveryAlarm, RecoveryAlarmArgs } from "./recoveryAlarm";
export { ConvertedHvmAmi, ConvertedHvmAmiArgs } from "./convertedHvmAmi";
export { SurrogateAmi, SurrogateAmiArgs, Recipe } from "./surrogateAmi";
export { StackLifetime } from "./stackLifetime";
