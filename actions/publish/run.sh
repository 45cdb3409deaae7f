#!/usr/bin/env bash
# actions/publish: sends a spec through a build node with
# 'pyrsia-build publish --json', waits (up to INPUT_DEADLINE) for the
# network's verdict, checks the proof bundle against the policy, and
# reports votes, the log index and the verdict as step outputs, a job
# summary and annotations. Inputs come as INPUT_* variables, the binary as
# PYRSIA_BUILD (step 1).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
: "${PYRSIA_BUILD:?the install step gives the binary}"

pb_mask "${INPUT_TOKEN:-}"
pb_mask "${INPUT_KEY:-}"
pb_mask "${INPUT_PASSWORD:-}"
spec=${INPUT_SPEC:-}
pb_need spec "$spec"
pb_file spec "$spec"
pb_need node "${INPUT_NODE:-}"
pb_need policy "${INPUT_POLICY:-}"
pb_file policy "$INPUT_POLICY"
if [ -z "${INPUT_TOKEN:-}" ] && [ -z "${INPUT_KEY:-}" ]; then
  pb_die 2 "input 'token' (the node's API token: the node signs the request) or 'key' (a requester's cosign key the policy lists) is required"
fi
if [ -n "${INPUT_TOKEN:-}" ] && [ -n "${INPUT_KEY:-}" ]; then
  pb_die 2 "inputs 'token' and 'key' do not go together: give the node's API token, or a requester's key"
fi
deadline=${INPUT_DEADLINE:-30m}
[[ "$deadline" =~ ^[0-9]+[smh]?$ ]] || pb_die 2 "input 'deadline': \"$deadline\" is not a duration such as 600s, 30m or 2h"

work=$(mktemp -d "${RUNNER_TEMP:?}/pyrsia-build-publish.XXXXXX")
trap 'rm -rf "$work"' EXIT
umask 077
if [ -n "${INPUT_KEY:-}" ]; then
  printf '%s\n' "$INPUT_KEY" >"$work/requester.key"
  auth=(--key "$work/requester.key")
  export COSIGN_PASSWORD=${INPUT_PASSWORD:-}
else
  printf '%s\n' "$INPUT_TOKEN" >"$work/token"
  auth=(--token-file "$work/token")
fi
umask 022
proof=${INPUT_PROOF:-}
if [ -z "$proof" ]; then
  proof="$RUNNER_TEMP/pyrsia-build-$(pb_random | cut -c1-12).proof.json"
fi

code=0
pb_run "$work/out" "$work/err" timeout --foreground "$deadline" \
  "$PYRSIA_BUILD" publish --json --node "$INPUT_NODE" "${auth[@]}" --policy "$INPUT_POLICY" -o "$proof" -- "$spec" || code=$?
ev="$work/out"
# Only well-formed JSON objects from the CLI count; anything else is ignored.
jq -c 'objects' "$ev" >"$work/events" 2>/dev/null || : >"$work/events"
ev="$work/events"
input=$(jq -r 'select(.type == "input") | .input' "$ev" | head -1)
pb_output input-digest "$input"
# votes: each voter once, its subjects (digests) or its error.
votes=$(jq -r 'select(.type == "vote") | "\(.node)\t\(if .error then "failed: " + .error else (.subjects // [] | join(" ")) end)"' "$ev")
pb_output votes "$votes"
voters=$(jq -s '[.[] | select(.type == "vote") | .node] | unique | length' "$ev")
pb_table_head "pyrsia-build publish"

# rows ROW_VERDICT INDEX DIGEST...: one row per artifact digest with the
# votes for it and against it and, from a verdict, the differing files.
rows() {
  local verdict=$1 index=$2 d n_for n_against differs
  shift 2
  differs=$(jq -r 'select(.type == "verdict") | .verdict.differs // {} | to_entries[] | "\(.key): \(.value | join(", "))"' "$ev" | paste -sd ';' - | sed 's/;/; /g')
  for d in "$@"; do
    n_for=$(jq -s --arg d "$d" '[.[] | select(.type == "vote" and ((.subjects // []) | index($d))) | .node] | unique | length' "$ev")
    n_against=$((voters - n_for))
    pb_row "$(jq -r --arg d "$d" 'select(.type == "verdict") | .verdict.groups[]?.subjects[]? | select(.digest == $d) | .name' "$ev" | head -1)" "$d" "$n_for" "$n_against" "$differs" "$index" "$verdict"
  done
}

if [ "$code" -eq 0 ]; then
  index=$(jq -r 'select(.type == "proof") | .index' "$ev")
  # the entry's subjects, from the proof bundle the CLI checked
  subjects=$(jq -r '.entry | @base64d | fromjson | .subjects[] | "\(.digest)  \(.name)"' "$proof")
  while read -r d name; do
    n_for=$(jq -s --arg d "$d" '[.[] | select(.type == "vote" and ((.subjects // []) | index($d))) | .node] | unique | length' "$ev")
    pb_row "$name" "$d" "$n_for" "$((voters - n_for))" "" "$index" "published"
  done <<<"$subjects"
  pb_output digests "$subjects"
  pb_output log-index "$index"
  pb_output proof "$proof"
  pb_output verdict published
  exit 0
fi

pb_output proof ""
pb_output log-index ""
if [ "$code" -eq 124 ]; then
  pb_output verdict timeout
  pb_row "$spec" "" "$voters voted" "" "" "" "no verdict within $deadline"
  pb_die 1 "no verdict for $spec within the deadline of $deadline: the build network is still voting ('pyrsia-build status --node $INPUT_NODE ${input:-INPUT}' shows the outcome later); raise input 'deadline' if builds take longer"
fi
text=$(jq -r 'select(.type == "verdict") | .verdict.text' "$ev" | head -1)
if [ -n "$text" ]; then
  pb_output verdict no-quorum
  pb_output digests "$(jq -r 'select(.type == "verdict") | .verdict.groups[]?.subjects[]? | "\(.digest)  \(.name)"' "$ev")"
  mapfile -t ds < <(jq -r 'select(.type == "verdict") | .verdict.groups[]?.subjects[]?.digest' "$ev" | awk '!seen[$0]++')
  if [ "${#ds[@]}" -gt 0 ]; then
    rows "no quorum" "" "${ds[@]}"
  else
    pb_row "$spec" "" "0" "$voters" "" "" "no quorum"
  fi
  pb_summary ""
  pb_summary "$(pb_cell "$text")"
else
  pb_output verdict error
  pb_output digests ""
fi
e=$(<"$work/err")
e=${e//"$work/requester.key"/the key (input \'key\')}
e=${e//"set COSIGN_PASSWORD to the password"/set input \'password\' to the password}
printf '%s\n' "$e" >"$work/err"
pb_fail_from "$work/err" "$code" "$spec"
