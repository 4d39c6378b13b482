// Compiled (never run) by scripts/check-api against the types openapi-typescript generates
// from the gateway's document: a typed client reads an event's conditions and a player's
// progress as the condition tree, not as an untyped object.
import type { components } from "./bestow-api";

type Schemas = components["schemas"];

// A view's conditions take the condition tree, nested nodes included...
const event: Schemas["EventView"]["conditions"] = {
  type: "AND",
  subConditions: [{ type: "LOGIN_STREAK", days: 7 }, { type: "NOT", condition: { type: "LEVEL_REACHED", level: 10 } }],
};
const tier: Schemas["TierView"]["conditions"] = { type: "LOGIN_DAYS", days: 3 };
const snapshot: Schemas["EventSnapshot"]["conditions"] = null;
const screen: Schemas["ScreenEvent"]["conditions"] = { type: "FRIEND_INVITE", count: 2 };

// ...and refuse what is not one (these lines must fail to compile).
// @ts-expect-error a leaf's members have their types
const wrongMember: Schemas["EventView"]["conditions"] = { type: "LOGIN_STREAK", days: "seven" };
// @ts-expect-error an unknown node type
const unknownType: Schemas["ScreenTier"]["conditions"] = { type: "TELEPORT", days: 1 };

// The progress tree: every node has its figures, and children are nodes too.
function firstChildMet(verdict: Schemas["Eligibility"]): boolean | undefined {
  return verdict.conditions?.children?.[0]?.met;
}
function progressRatio(tier: Schemas["ScreenTier"]): number {
  const progress = tier.progress;
  return progress ? progress.current / progress.target : 1;
}
// @ts-expect-error `met` is a boolean
const notABoolean: Schemas["NodeProgress"]["met"] = "yes";

export { event, tier, snapshot, screen, wrongMember, unknownType, firstChildMet, progressRatio, notABoolean };
