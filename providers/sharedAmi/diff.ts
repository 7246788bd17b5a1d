// SharedAmi diff: pure, from the old outputs and the new (checked) inputs, by ./fields.ts.
import { changedFields } from "../core/fields";
import { retirementNote } from "../core/retire";
import { publishNote } from "../core/publish";
import { SHARED_AMI_FIELDS } from "./fields";
import { needsCopy, SharedAmiInputs, SharedAmiOutputs } from "./inputs";

export interface SharedAmiDiff {
  changes: boolean;
  replaces: string[];
  changed: string[];
  deleteBeforeReplace: boolean;
  /** What preview says: the fields behind a replacement, a gap in service. */
  notes: string[];
}

export function diffSharedAmi(olds: SharedAmiOutputs, news: SharedAmiInputs): SharedAmiDiff {
  const replaces = changedFields(SHARED_AMI_FIELDS, "replace", olds, news);
  const changed = changedFields(SHARED_AMI_FIELDS, "in-place", olds, news);
  // Drift seen by refresh: a region asked for has no image any more.
  const missing = news.regions.filter((r) => olds.regions?.includes(r) && !olds.imageIds?.[r]);
  if (!changed.includes("regions") && news.regions.some((r) => !olds.imageIds?.[r])) changed.push("regions");
  const notes = replaces.length ? [`replaces the copies named ${olds.imageName} because ${replaces.join(", ")} changed`] : [];
  if (replaces.length && !news.exactName && olds.copiedRegions?.length) notes.push(retirementNote(`each old copy (${olds.copiedRegions.map((r) => `${olds.imageIds[r]} in ${r}`).join(", ")})`, olds.retirement));
  const droppedCopies = (olds.copiedRegions ?? []).filter((r) => !news.regions.includes(r) && olds.imageIds?.[r]);
  if (!replaces.length && droppedCopies.length && !olds.exactName) notes.push(retirementNote(`the copies of dropped regions (${droppedCopies.map((r) => `${olds.imageIds[r]} in ${r}`).join(", ")})`, olds.retirement));
  for (const region of missing) {
    const lost = olds.lostCopies?.[region];
    notes.push(`regions: the copy in ${region}${lost ? ` (${lost.imageId})` : ""} is gone (deregistered out of band): the update copies it again${lost?.snapshotIds.length ? ` and deletes its left-over snapshots ${lost.snapshotIds.join(", ")}` : ""}`);
  }
  const inPlace = news.regions.filter((r) => !needsCopy(news, r));
  const added = [...news.accountIds.filter((a) => !olds.accountIds?.includes(a)), ...news.organizationArns.filter((a) => !olds.organizationArns?.includes(a)), ...news.organizationalUnitArns.filter((a) => !olds.organizationalUnitArns?.includes(a))];
  if (inPlace.length && added.length) notes.push(`${added.join(", ")} on the source shared in place (${inPlace.join(", ")}): a principal the source already grants by hand becomes this share's, and deleting the share (or dropping it) revokes it unless another share names it`);
  const published = publishNote(olds.publish, news.publish, news.regions);
  if (published && !replaces.length) notes.push(published);
  if (replaces.length && news.publish) notes.push(`publish: SSM parameter ${news.publish} then names the new copies in ${news.regions.join(", ")}`);
  const drift = changed.filter((f) => f !== "regions");
  if (drift.length && !replaces.length) notes.push(`updates ${drift.join(", ")} to the inputs (changed in the config, or out of band as refresh saw)`);
  // Copies get a name unique per build unless exactName: only an exact name shared with old copies
  // in the same region forces those out first.
  const sameName = news.name === undefined || news.name === olds.imageName;
  const overlap = news.regions.filter((r) => olds.copiedRegions?.includes(r) && needsCopy(news, r));
  const deleteBeforeReplace = replaces.length > 0 && news.exactName && sameName && overlap.length > 0;
  if (deleteBeforeReplace) {
    notes.push(`warning: exactName: the copies ${overlap.map((r) => `${olds.imageIds[r]} (${r})`).join(", ")} named ${olds.imageName} are deleted before their replacements are copied, so those regions have no image of that name meanwhile (leave exactName unset to copy first)`);
  }
  return {
    changes: replaces.length > 0 || changed.length > 0,
    replaces: [...replaces],
    changed: [...replaces, ...changed],
    deleteBeforeReplace,
    notes,
  };
}
