// Package deploy holds the files that run a pyrsia-build build node as a
// systemd service, and their tests (it has no Go API):
//
//   - pyrsia-build-node.service: the node, unprivileged, as the system
//     user pyrsia-build, with its data in /var/lib/pyrsia-build and its
//     configuration in /etc/pyrsia-build
//   - pyrsia-build-buildkitd.service: the buildkitd it builds with (root,
//     for runc), its socket open to the group pyrsia-build only
//   - pyrsia-build.sysusers.conf, pyrsia-build.tmpfiles.conf: the user and
//     the data folder
//   - node.example.yaml: the configuration file, every field explained
//
// The README's "Running a build node as a service" says how to install,
// run, watch, back up and upgrade a node with them.
package deploy
