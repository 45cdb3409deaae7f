#!/usr/bin/env bash
# actions/verify: checks an artifact with 'pyrsia-build verify --json'
# against an attestation bundle and public keys, or a proof bundle and the
# network policy, and reports the verdict as step outputs, a job summary
# and annotations. Inputs come as INPUT_* variables, the binary as
# PYRSIA_BUILD (step 1).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
: "${PYRSIA_BUILD:?the install step gives the binary}"

artifact=${INPUT_ARTIFACT:-}
pb_need artifact "$artifact"
pb_file artifact "$artifact"
args=(--json)
if [ -n "${INPUT_POLICY:-}" ]; then
  pb_file policy "$INPUT_POLICY"
  args+=(--policy "$INPUT_POLICY")
fi
nkeys=0
while IFS= read -r k; do
  k=${k%$'\r'}
  [ -z "${k//[[:space:]]/}" ] && continue
  pb_file keys "$k"
  args+=(--key "$k")
  nkeys=$((nkeys + 1))
done <<<"${INPUT_KEYS:-}"
if [ -z "${INPUT_POLICY:-}" ] && [ "$nkeys" -eq 0 ]; then
  pb_die 2 "input 'keys' (public key files, one a line) or 'policy' (the network policy, for a proof bundle) is required"
fi
if [ -n "${INPUT_BUNDLE:-}" ]; then
  pb_file bundle "$INPUT_BUNDLE"
  args+=(--bundle "$INPUT_BUNDLE")
fi
[ -z "${INPUT_THRESHOLD:-}" ] || args+=(--threshold "$INPUT_THRESHOLD")
[ -z "${INPUT_TYPE:-}" ] || args+=(--type "$INPUT_TYPE")

work=$(mktemp -d "${RUNNER_TEMP:?}/pyrsia-build-verify.XXXXXX")
trap 'rm -rf "$work"' EXIT
pb_table_head "pyrsia-build verify"
code=0
pb_run "$work/out" "$work/err" "$PYRSIA_BUILD" verify "${args[@]}" -- "$artifact" || code=$?
if [ "$code" -ne 0 ]; then
  reason=$(sed -n 's/^pyrsia-build: error: //p' "$work/err" | head -1)
  reason=${reason#"$artifact: "}
  reason=${reason#"not verified: "}
  digest=sha256:$(sha256sum -- "$artifact" | cut -d' ' -f1)
  if [ "$code" -eq 1 ]; then
    pb_row "$artifact" "$digest" "" "" "" "" "not verified: $reason"
    pb_output verdict "not-verified"
  else
    pb_output verdict "error"
  fi
  pb_output digest "$digest"
  pb_output reason "$reason"
  pb_fail_from "$work/err" "$code"
fi
r="$work/out"
digest=sha256:$(jq -r '.digest | ltrimstr("sha256:")' "$r")
signers=$(jq -r '.signers | join(", ")' "$r")
index=$(jq -r '.log.index // ""' "$r")
pb_row "$artifact" "$digest" "$signers" "" "" "$index" "verified"
pb_output verdict verified
pb_output digest "$digest"
pb_output signers "$signers"
pb_output log-index "$index"
pb_output input-digest "$(jq -r '.log.inputDigest // ""' "$r")"
pb_output reason ""
