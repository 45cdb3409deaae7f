#!/usr/bin/env bash
# actions/build: builds a spec with 'pyrsia-build build' (or, with
# INPUT_ARTIFACTS, attests files with 'pyrsia-build attest'), signs the
# provenance with the key from INPUT_KEY, and reports the artifacts as step
# outputs, a job summary and annotations. Inputs come as INPUT_* variables,
# the binary as PYRSIA_BUILD (step 1).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
: "${PYRSIA_BUILD:?the install step gives the binary}"

# Secrets first: masked before anything else is printed.
pb_mask "${INPUT_PASSWORD:-}"
pb_mask "${INPUT_KEY:-}"
pb_need key "${INPUT_KEY:-}"
spec=${INPUT_SPEC:-}
artifacts=${INPUT_ARTIFACTS:-}
if [ -z "$spec" ] && [ -z "$artifacts" ]; then
  pb_die 2 "input 'spec' is required (the build spec to build), or 'artifacts' (files to attest)"
fi
[ -z "$spec" ] || pb_file spec "$spec"

work=$(mktemp -d "${RUNNER_TEMP:?}/pyrsia-build-key.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077
printf '%s\n' "$INPUT_KEY" >"$work/cosign.key"
umask 022
export COSIGN_PASSWORD=${INPUT_PASSWORD:-}

# fail CODE: pyrsia-build's error as an annotation, in the action's words
# for the key (never the temporary file) and its password.
fail() {
  local e
  e=$(<"$work/err")
  e=${e//"$work/cosign.key"/the key (input \'key\')}
  e=${e//"set COSIGN_PASSWORD to the password"/set input \'password\' to the password}
  printf '%s\n' "$e" >"$work/err"
  pb_fail_from "$work/err" "$1" "$spec"
}

args=()
[ -z "${INPUT_BUILDER_ID:-}" ] || args+=(--builder-id "$INPUT_BUILDER_ID")
pb_table_head "pyrsia-build build"
if [ -n "$artifacts" ]; then
  # attest: one bundle for all the files.
  files=()
  while IFS= read -r f; do
    f=${f%$'\r'}
    [ -z "${f//[[:space:]]/}" ] && continue
    pb_file artifacts "$f"
    files+=("$f")
  done <<<"$artifacts"
  [ "${#files[@]}" -gt 0 ] || pb_die 2 "input 'artifacts' names no file"
  bundle=${INPUT_BUNDLE:-${files[0]}.sigstore.json}
  [ -z "$spec" ] || args+=(--spec "$spec")
  code=0
  pb_run "$work/out" "$work/err" "$PYRSIA_BUILD" attest --key "$work/cosign.key" --bundle "$bundle" "${args[@]}" -- "${files[@]}" || code=$?
  [ "$code" -eq 0 ] || fail "$code"
  digests=$(grep -E '^sha256:[0-9a-f]{64}  ' "$work/out")
  while read -r d name; do
    pb_row "$name" "$d" "" "" "" "" "attested"
  done <<<"$digests"
  pb_output digests "$digests"
  pb_output input-digest ""
  pb_output bundle "$bundle"
  pb_output out ""
  exit 0
fi

out=${INPUT_OUT:-}
if [ -z "$out" ]; then
  out=$(mktemp -d "$RUNNER_TEMP/pyrsia-build-out.XXXXXX")
fi
[ -z "${INPUT_IMAGES:-}" ] || args+=(--images "$INPUT_IMAGES")
[ -z "${INPUT_BUILDKIT_ADDR:-}" ] || args+=(--buildkit-addr "$INPUT_BUILDKIT_ADDR")
code=0
# A private buildkitd, if one is started, keeps its state in this job's
# RUNNER_TEMP.
pb_run "$work/out" "$work/err" "$PYRSIA_BUILD" build --key "$work/cosign.key" --out "$out" --progress plain \
  --data-dir "$RUNNER_TEMP/pyrsia-build-state" "${args[@]}" -- "$spec" || code=$?
[ "$code" -eq 0 ] || fail "$code"
result="$out/result.json"
input=$(jq -r '.inputDigest' "$result")
digests=$(jq -r '.artifacts[] | "\(.digest)  \(.name)"' "$result")
while read -r d name; do
  pb_row "$name" "$d" "" "" "" "" "built and attested"
done <<<"$digests"
pb_summary ""
pb_summary "input digest \`$input\`; attestation \`$(pb_cell "$out/attestation.sigstore.json")\`"
pb_output input-digest "$input"
pb_output digests "$digests"
pb_output bundle "$out/attestation.sigstore.json"
pb_output out "$out"
