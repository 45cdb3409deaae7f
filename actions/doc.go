// Package actions holds the pyrsia-build GitHub Actions, composite actions
// in actions/build, actions/publish and actions/verify, each an action.yml
// whose steps call the action's run.sh (shared code in lib.sh, the build of
// pyrsia-build from the action's own source in install.sh).
//
// The package has no Go API. Its tests run each action as a runner does
// (runner_test.go: action.yml parsed, inputs and step outputs expanded,
// steps run with their shells, workflow commands, outputs and the job
// summary read back) against the real pyrsia-build built from this
// repository.
package actions
