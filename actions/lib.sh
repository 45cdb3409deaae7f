# shellcheck shell=bash
# Shared logic of the pyrsia-build GitHub Actions (actions/build, publish,
# verify): building pyrsia-build from the action's own source, workflow
# commands escaped as the runner expects, step outputs, job summaries.
# Sourced by each action's run.sh; every function is prefixed pb_.
set -euo pipefail

# pb_data TEXT: TEXT escaped as a workflow command's data (% CR LF).
pb_data() {
  local s=$1
  s=${s//'%'/'%25'}
  s=${s//$'\r'/'%0D'}
  s=${s//$'\n'/'%0A'}
  printf '%s' "$s"
}

# pb_prop TEXT: TEXT escaped as a workflow command's property value
# (data's escapes, and : and ,).
pb_prop() {
  local s
  s=$(pb_data "$1")
  s=${s//':'/'%3A'}
  s=${s//','/'%2C'}
  printf '%s' "$s"
}

# pb_error MSG [FILE [LINE]]: an error annotation, on FILE at LINE if given.
pb_error() {
  local props=""
  if [ -n "${2:-}" ]; then
    props=" file=$(pb_prop "$2")"
    if [[ "${3:-}" =~ ^[0-9]+$ ]]; then props+=",line=$3"; fi
  fi
  printf '::error%s::%s\n' "$props" "$(pb_data "$1")"
}

# pb_mask VALUE: tells the runner to hide VALUE, and each of its lines,
# from the log. Empty values and lines are skipped (masking "" is an error).
pb_mask() {
  local line
  [ -n "$1" ] || return 0
  printf '::add-mask::%s\n' "$(pb_data "$1")"
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    [ -n "${line//[[:space:]]/}" ] && printf '::add-mask::%s\n' "$(pb_data "$line")"
  done <<<"$1"
  return 0
}

# pb_random: 32 random hex digits.
pb_random() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# pb_output NAME VALUE: a step output in $GITHUB_OUTPUT's delimiter form
# (any value, several lines too), with a random delimiter that does not
# occur in VALUE.
pb_output() {
  local d
  d="ghadelimiter_$(pb_random)"
  while [[ "$2" == *"$d"* ]]; do d="ghadelimiter_$(pb_random)"; done
  printf '%s<<%s\n%s\n%s\n' "$1" "$d" "$2" "$d" >>"$GITHUB_OUTPUT"
}

# pb_summary TEXT: appends Markdown to the job summary.
pb_summary() { printf '%s\n' "$1" >>"$GITHUB_STEP_SUMMARY"; }

# pb_cell TEXT: TEXT as one Markdown table cell: one line, no HTML, no
# column break; "–" when empty.
pb_cell() {
  local s=$1
  s=${s//$'\r'/ }
  s=${s//$'\n'/ }
  s=${s//'&'/'&amp;'}
  s=${s//'<'/'&lt;'}
  s=${s//'>'/'&gt;'}
  s=${s//'|'/'\|'}
  s=${s//'`'/"'"}
  printf '%s' "${s:-–}"
}

# pb_table_head TITLE: the summary's heading and the table's heading row.
pb_table_head() {
  pb_summary "### $1"
  pb_summary ""
  pb_summary "| artifact | digest | votes for | votes against | differing files | log index | verdict |"
  pb_summary "|---|---|---|---|---|---|---|"
}

# pb_row ARTIFACT DIGEST FOR AGAINST DIFFERS INDEX VERDICT: one table row.
pb_row() {
  local out="|" c
  for c in "$@"; do out+=" $(pb_cell "$c") |"; done
  pb_summary "$out"
}

# pb_die CODE MSG [FILE [LINE]]: an error annotation, a summary line, exit.
pb_die() {
  local code=$1
  shift
  pb_error "$@"
  pb_summary "**pyrsia-build: error:** $(pb_cell "$1")"
  exit "$code"
}

# pb_need NAME VALUE: a required input must be given.
pb_need() {
  [ -n "$2" ] || pb_die 2 "input '$1' is required: set it under 'with:' in the workflow"
}

# pb_file NAME PATH: an input naming a file must name a regular file.
pb_file() {
  [ -f "$2" ] || pb_die 2 "input '$1': $2 is not a file (paths are relative to the job's working directory, usually \$GITHUB_WORKSPACE)"
}

# pb_source_key DIR: the cache key of a pyrsia-build source tree: its Go
# files (not tests), go.mod and go.sum (the action's commit, also without
# .git, as a runner checks out a remote action), and the Go toolchain.
pb_source_key() {
  (
    cd "$1"
    {
      go env GOVERSION GOOS GOARCH
      find . -path ./.git -prune -o -type f \( -name '*.go' ! -name '*_test.go' -o -name go.mod -o -name go.sum \) -print |
        LC_ALL=C sort | xargs -d '\n' sha256sum
    } | sha256sum | cut -c1-32
  )
}

# pb_install: builds pyrsia-build from the action's own source (two
# folders above the action) with the runner's Go, reproducibly, once per
# source tree and toolchain (cached under $RUNNER_TOOL_CACHE), and sets
# PB to the binary's path. Never downloads a binary.
pb_install() {
  local root key dir bin tmp
  root=$(cd "$GITHUB_ACTION_PATH/../.." && pwd)
  if ! command -v go >/dev/null 2>&1; then
    pb_die 2 "go is not on PATH: the action builds pyrsia-build from its own source with the runner's Go; add 'uses: actions/setup-go' before it"
  fi
  key=$(pb_source_key "$root")
  dir="${RUNNER_TOOL_CACHE:-${RUNNER_TEMP:?}}/pyrsia-build/$key"
  bin="$dir/pyrsia-build"
  if [ ! -x "$bin" ]; then
    mkdir -p "$dir"
    tmp=$(mktemp "$dir/.build.XXXXXX")
    echo "building pyrsia-build from $root (cache key $key)" >&2
    (cd "$root" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags=-buildid= -o "$tmp" ./cmd/pyrsia-build) >&2 ||
      { rm -f "$tmp"; pb_die 2 "go build of pyrsia-build from $root failed (see the log above)"; }
    mv -f "$tmp" "$bin"
  fi
  PB=$bin
}

# pb_run OUT ERR CMD...: runs CMD with its output shown in the log as
# plain text (workflow commands in it are not acted on: a build's log is
# data) and kept in the files OUT and ERR; returns CMD's exit code.
pb_run() {
  local out=$1 err=$2 tok code
  shift 2
  tok=$(pb_random)
  printf '::stop-commands::%s\n' "$tok"
  # stderr (progress, errors) live; stdout (the results) after.
  set +e
  "$@" 2>&1 >"$out" | tee "$err" >&2
  local st=("${PIPESTATUS[@]}")
  set -e
  code=${st[0]}
  cat "$out"
  printf '::%s::\n' "$tok"
  return "$code"
}

# pb_fail_from ERR CODE [SPEC]: turns pyrsia-build's error output into one
# annotation and exits with CODE. An error that names a field of SPEC
# ("SPEC: spec: FIELD: ...", "spec SPEC: spec: FIELD: ...", "line N:")
# points at its line.
pb_fail_from() {
  local errfile=$1 code=$2 spec=${3:-} msg hints line field
  msg=$(sed -n 's/^pyrsia-build: error: //p' "$errfile" | head -1)
  hints=$(sed -n 's/^pyrsia-build: hint: //p' "$errfile" | paste -sd ' ' -)
  [ -n "$msg" ] || msg=$(grep -v '^[[:space:]]*$' "$errfile" | tail -1 || true)
  [ -n "$msg" ] || msg="pyrsia-build exited with code $code"
  [ -z "$hints" ] || msg="$msg ($hints)"
  # build: "SPEC: spec: FIELD: ..."; publish: "spec SPEC: spec: FIELD: ...".
  local rest=""
  if [ -n "$spec" ]; then
    case "$msg" in
    "$spec: spec: "*) rest=${msg#"$spec: spec: "} ;;
    "spec $spec: spec: "*) rest=${msg#"spec $spec: spec: "} ;;
    esac
  fi
  if [ -n "$rest" ]; then
    line=$(sed -n 's/.*: line \([0-9][0-9]*\):.*/\1/p' <<<"$msg" | head -1)
    if [ -z "$line" ]; then
      field=${rest%%:*}
      line=$(pb_field_line "$spec" "$field")
    fi
    pb_die "$code" "$msg" "$spec" "$line"
  fi
  pb_die "$code" "$msg"
}

# pb_field_line FILE FIELD: the line of FIELD (a.b.c, a[1].b) in a YAML
# file: each key is looked for from the line of the one before it, on that
# line too (flow mappings such as "archive: {path: x, sha256: y}").
# Prints nothing if a key is not found.
pb_field_line() {
  local file=$1 field=$2
  [ -n "$field" ] || return 0
  awk -v path="$field" '
    BEGIN { n = split(path, keys, "."); for (i = 1; i <= n; i++) sub(/\[[0-9]+\]$/, "", keys[i]); k = 1 }
    /^[[:space:]]*#/ { next }
    {
      while (k <= n) {
        re = "(^|[[:space:]{,-])\"?" keys[k] "\"?[[:space:]]*:"
        if ($0 ~ re) { found = NR; k++ } else break
      }
      if (k > n) { print found; exit }
    }' "$file"
}
