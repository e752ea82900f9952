"""Checks Terraform folders without providers (CI reaches no Terraform registry, so no
`terraform validate`): every file parses (python-hcl2), every var./local./resource/data
reference names something declared in its module, and every module call passes declared
variables and all required ones.
    python terraform_refs.py DIR...   (each DIR: a root or a module folder; exit 1 on a finding)
"""

import re
import sys
from pathlib import Path

import hcl2

REF = re.compile(r"\b(var|local|data\.[a-z0-9_]+|(?:aws|random)_[a-z0-9_]+)\.([A-Za-z0-9_]+)")


def declared(blocks):
    """What a module declares: variables (and whether each has a default), locals, resources."""
    names = {"var": {}, "local": set(), "resource": set()}
    for block in blocks:
        for v in block.get("variable", []):
            for name, body in v.items():
                names["var"][name] = "default" in body
        for l in block.get("locals", []):
            names["local"].update(l)
        for kind in ("resource", "data"):
            for r in block.get(kind, []):
                for rtype, instances in r.items():
                    for name in instances:
                        names["resource"].add(("data." + rtype if kind == "data" else rtype, name))
    return names


def check_folder(folder: Path) -> list:
    findings, blocks, texts = [], [], {}
    for f in sorted(folder.glob("*.tf")) + sorted(folder.glob("*.tfvars")):
        try:
            with open(f) as fh:
                parsed = hcl2.load(fh)
        except Exception as e:  # noqa: BLE001 - any parse error is a finding
            findings.append(f"{f}: does not parse: {e}")
            continue
        if f.suffix == ".tf":
            blocks.append(parsed)
            texts[f] = re.sub(r"#.*", "", f.read_text())
    names = declared(blocks)
    for f, text in texts.items():
        for kind, name in REF.findall(text):
            missing = (
                (kind == "var" and name not in names["var"])
                or (kind == "local" and name not in names["local"])
                or (kind not in ("var", "local") and (kind, name) not in names["resource"])
            )
            if missing:
                findings.append(f"{f}: {kind}.{name} is not declared in {folder}")
    for block in blocks:
        for m in block.get("module", []):
            for mod_name, body in m.items():
                source = body["source"]
                source = (folder / (source[0] if isinstance(source, list) else source)).resolve()
                module_vars = declared([hcl2.load(open(p)) for p in sorted(source.glob("*.tf"))])["var"]
                passed = {k for k in body if not k.startswith("__")} - {
                    "source", "version", "providers", "depends_on", "count", "for_each"}
                findings += [f"{folder}: module {mod_name} passes {k}, which {source} does not declare"
                             for k in sorted(passed - module_vars.keys())]
                findings += [f"{folder}: module {mod_name} does not pass required {k}"
                             for k, has_default in sorted(module_vars.items()) if not has_default and k not in passed]
    return findings


if __name__ == "__main__":
    findings = [f for d in sys.argv[1:] for f in check_folder(Path(d))]
    for f in findings:
        print(f)
    print(f"terraform: {len(sys.argv) - 1} folders checked, {len(findings)} findings")
    sys.exit(1 if findings else 0)
