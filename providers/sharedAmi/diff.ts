// SharedAmi diff: pure, from the old outputs and the new (checked) inputs.
import { needsCopy, SharedAmiInputs, SharedAmiOutputs } from "./inputs";

/** Inputs whose change makes new copies (the old ones are deleted). */
export const REPLACE_FIELDS = ["sourceAmiId", "sourceRegion", "encrypted", "kmsKeyIds", "name"] as const;
/** Inputs changed in place. */
export const UPDATE_FIELDS = [
  "regions", "accountIds", "organizationArns", "organizationalUnitArns", "allowPublic", "shareSnapshots",
  "tags", "deprecateAt", "description", "timeoutMinutes",
] as const;

export interface SharedAmiDiff {
  changes: boolean;
  replaces: string[];
  changed: string[];
  deleteBeforeReplace: boolean;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

export function diffSharedAmi(olds: SharedAmiOutputs, news: SharedAmiInputs): SharedAmiDiff {
  const replaces = REPLACE_FIELDS.filter((f) => !same(olds[f], news[f]));
  const changed: string[] = UPDATE_FIELDS.filter((f) => !same(olds[f], news[f]));
  // Drift seen by refresh: a region asked for has no image any more.
  if (!changed.includes("regions") && news.regions.some((r) => !olds.imageIds?.[r])) changed.push("regions");
  // Copies keep their names; a replacement with the same name in the same region would collide.
  const sameName = news.name === undefined || news.name === olds.imageName;
  const overlap = news.regions.some((r) => olds.copiedRegions?.includes(r) && needsCopy(news, r));
  return {
    changes: replaces.length > 0 || changed.length > 0,
    replaces: [...replaces],
    changed: [...replaces, ...changed],
    deleteBeforeReplace: replaces.length > 0 && sameName && overlap,
  };
}
