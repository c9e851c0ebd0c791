"""Fail on a `# type: ignore` without an error code, or without a reason after it on the same line
(`# type: ignore[code]  # why`): a silenced finding must say why it is not a bug."""
from __future__ import annotations

import re
import sys
from pathlib import Path

IGNORE = re.compile(r"#\s*type:\s*ignore(?P<codes>\[[^\]]*\])?(?P<rest>.*)$")


def findings(roots: list[Path]) -> list[str]:
    out = []
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                match = IGNORE.search(line)
                if match is None:
                    continue
                if not match.group("codes"):
                    out.append(f"{path}:{number}: `# type: ignore` without an error code")
                elif not re.match(r"\s*#\s*\S", match.group("rest")):
                    out.append(f"{path}:{number}: `# type: ignore{match.group('codes')}` without a reason "
                               f"(add `  # why` after it)")
    return out


if __name__ == "__main__":
    found = findings([Path(p) for p in (sys.argv[1:] or ["clbias"])])
    print("\n".join(found) if found else "type: ignore comments: all carry a code and a reason")
    sys.exit(1 if found else 0)
