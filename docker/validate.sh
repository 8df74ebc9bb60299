#!/usr/bin/env bash
# Checks the container set-up as far as that is possible without a Docker engine:
#   1. docker-compose (v1, Debian's package) parses and validates docker/compose.yml;
#   2. every app the Dockerfile and compose file name has a source entry point;
#   3. the files the Dockerfile copies from the build context exist;
#   4. each app service mounts only the secrets it needs, and NATS only its TLS files, which
#      are the ones docker/nats/nats.conf names; nothing mounts the CA's key.
# Runs from any working directory and needs no real secrets.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo_root}"

compose_file=docker/compose.yml
dockerfile=docker/Dockerfile
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

if ! command -v docker-compose >/dev/null 2>&1; then
  echo "docker-compose is not installed; install it with: apt-get install docker-compose" >&2
  exit 2
fi

# Placeholder secret files, so the result never depends on whether `npm run secrets:init`
# has run. compose.yml reads them from PORTCULLIS_SECRETS_DIR.
placeholders="$(mktemp -d)"
trap 'rm -rf "${placeholders}"' EXIT
mkdir -p "${placeholders}/services" "${placeholders}/tls"
touch "${placeholders}"/services/{auth,orders,billing}.key
touch "${placeholders}"/{token-key-encryption.key,trust.json,data-keys.json,blind-index-keys.json}
touch "${placeholders}"/metrics.token
touch "${placeholders}"/tls/{ca,nats-server,auth,orders,billing}.{crt,key}
export PORTCULLIS_SECRETS_DIR="${placeholders}"

echo "== compose file ($(docker-compose version --short))"
if docker-compose -f "${compose_file}" config -q; then
  echo "ok: ${compose_file} is valid"
else
  fail "docker-compose rejected ${compose_file}"
fi
resolved="$(docker-compose -f "${compose_file}" config 2>/dev/null || true)"

echo "== entry points"
# Apps named by the Dockerfile's default, the compose build arguments, and any literal
# dist path in docker/.
apps="$(
  {
    sed -n 's/^ARG APP=\([a-z0-9-]*\).*/\1/p' "${dockerfile}"
    sed -n 's/^ *APP: *\([a-z0-9-]*\) *$/\1/p' <<<"${resolved}"
    { grep -rhoE 'dist/apps/[a-z0-9-]+/src/main\.js' docker || true; } |
      sed -E 's#dist/apps/([^/]+)/.*#\1#'
  } | sort -u
)"
if [[ -z "${apps}" ]]; then
  fail "found no app named in ${dockerfile} or ${compose_file}"
fi
for app in ${apps}; do
  if [[ -f "apps/${app}/src/main.ts" ]]; then
    echo "ok: dist/apps/${app}/src/main.js <- apps/${app}/src/main.ts"
  else
    fail "dist/apps/${app}/src/main.js is referenced but apps/${app}/src/main.ts does not exist"
  fi
done

echo "== Dockerfile sources"
# Every file or folder the build context must supply (COPY without --from) exists and is
# not excluded by name in .dockerignore.
while read -r source; do
  if [[ ! -e "${source}" ]]; then
    fail "${dockerfile} copies ${source}, which does not exist"
  elif grep -qxF -e "${source}" -e "${source%%/*}" .dockerignore; then
    fail "${dockerfile} copies ${source}, which .dockerignore excludes"
  else
    echo "ok: ${source}"
  fi
done < <(awk '$1 == "COPY" && $2 !~ /^--from=/ {
  for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i
}' "${dockerfile}" | sort -u)

echo "== secrets per service"
# Each app gets its own signing key, its own NATS certificate and key, the CA certificate, the
# trust file and the metrics scrape token; only auth gets the token signing key and the blind-index keys, only auth and
# billing the data keys. The resolved config names every secret's target, which is its path
# inside the container.
targets_of() {
  awk -v service="  $1:" '
    $0 == service { inside = 1; next }
    inside && /^  [^ ]/ { inside = 0 }
    inside && $1 == "target:" { print $2 }
  ' <<<"${resolved}" | sort
}
for app in auth orders billing; do
  targets="$(targets_of "${app}")"
  expected="/run/secrets/portcullis/services/${app}.key"$'\n'"/run/secrets/portcullis/trust.json"
  expected+=$'\n'"/run/secrets/portcullis/tls/ca.crt"$'\n'"/run/secrets/portcullis/metrics.token"
  expected+=$'\n'"/run/secrets/portcullis/tls/${app}.crt"$'\n'"/run/secrets/portcullis/tls/${app}.key"
  if [[ "${app}" == auth ]]; then
    expected+=$'\n'"/run/secrets/portcullis/token-key-encryption.key"
    expected+=$'\n'"/run/secrets/portcullis/blind-index-keys.json"
  fi
  # The services that store sealed fields hold the data keys.
  if [[ "${app}" == auth || "${app}" == billing ]]; then
    expected+=$'\n'"/run/secrets/portcullis/data-keys.json"
  fi
  expected="$(sort <<<"${expected}")"
  if [[ "${targets}" == "${expected}" ]]; then
    echo "ok: ${app} mounts $(paste -sd ' ' - <<<"${targets}")"
  else
    fail "${app} mounts [$(paste -sd ' ' - <<<"${targets}")]," \
      "expected [$(paste -sd ' ' - <<<"${expected}")]"
  fi
done

# NATS gets exactly the TLS files its configuration names: the CA and its own certificate.
nats_targets="$(targets_of nats)"
nats_files="$(grep -oE '/etc/nats/tls/[^"]+' docker/nats/nats.conf | sort -u)"
if [[ -n "${nats_files}" && "${nats_targets}" == "${nats_files}" ]]; then
  echo "ok: nats mounts $(paste -sd ' ' - <<<"${nats_targets}")"
else
  fail "nats mounts [$(paste -sd ' ' - <<<"${nats_targets}")]," \
    "docker/nats/nats.conf names [$(paste -sd ' ' - <<<"${nats_files}")]"
fi
if grep -q 'tls/ca\.key' <<<"${resolved}"; then
  fail "a service mounts the CA's private key (tls/ca.key)"
else
  echo "ok: no service mounts the CA's private key"
fi

if ((failures > 0)); then
  echo "${failures} check(s) failed" >&2
  exit 1
fi
echo "all checks passed"
