import { describe, expect, it } from "vitest";

import { isInternalPath } from "./paths";

describe("isInternalPath", () => {
  it.each(["/clinic", "/admin-console/users?search=a", "/"])("accepts %s", (path) => {
    expect(isInternalPath(path)).toBe(true);
  });

  it.each(["//evil.example", "/\\evil.example", "https://evil.example/", "clinic", "", "/a\nb", undefined, ["/clinic"]])(
    "rejects %s",
    (path) => {
      expect(isInternalPath(path)).toBe(false);
    },
  );
});
