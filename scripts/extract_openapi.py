"""Cut the user-access endpoints out of @octokit/openapi's full REST description.

The shared subset (``../shared/github-rest/openapi-subset.json``) covers what the app does as
an installation. Sign-in needs three more endpoints that a user-to-server token calls:
``GET /user``, ``GET /user/installations`` and ``GET /user/installations/{installation_id}/repositories``.
This script writes them, with every component they reference, to
``tests/github_sim/openapi-user-access.json``; ``tests/openapi_check`` reads both files.

    npm pack @octokit/openapi@23.0.2 && tar xzf octokit-openapi-23.0.2.tgz
    python scripts/extract_openapi.py package/generated/api.github.com.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PATHS = ("/user", "/user/installations", "/user/installations/{installation_id}/repositories")
OUT = Path(__file__).resolve().parents[1] / "tests" / "github_sim" / "openapi-user-access.json"


def refs(node: Any) -> set[str]:
    """Every ``$ref`` below ``node``."""
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(v) for v in node))
    return set()


def without_examples(node: Any) -> Any:
    """Examples are documentation: a checker needs only the schemas."""
    if isinstance(node, dict):
        return {k: without_examples(v) for k, v in node.items() if k not in ("examples", "example")}
    if isinstance(node, list):
        return [without_examples(v) for v in node]
    return node


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    paths = without_examples({p: {"get": spec["paths"][p]["get"]} for p in PATHS})
    components: dict[str, dict[str, Any]] = {}
    todo = refs(paths)
    while todo:
        ref = todo.pop()
        _, _, kind, name = ref.split("/")
        if name in components.setdefault(kind, {}):
            continue
        components[kind][name] = without_examples(spec["components"][kind][name])
        todo |= refs(components[kind][name])
    return {
        "openapi": spec["openapi"],
        "info": {**spec["info"], "description": "GitHub's user-access endpoints, cut from @octokit/openapi "
                                                f"{spec['info']['version']} (MIT) by scripts/extract_openapi.py."},
        "paths": paths,
        "components": {kind: dict(sorted(items.items())) for kind, items in sorted(components.items())},
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(extract(json.loads(Path(sys.argv[1]).read_text())), indent=1) + "\n")
    print(f"wrote {OUT}")
