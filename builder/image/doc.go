// Package image makes and finds builder images: reproducible OCI image
// layouts in an image store, for BuildKit's oci-layout:// named contexts
// (no registry is reachable).
//
// # Store
//
// An image store is a folder with one OCI image layout per image:
//
//	STORE/<name>/oci-layout
//	STORE/<name>/index.json        exactly one image manifest, annotated
//	                               org.opencontainers.image.ref.name=<name>
//	STORE/<name>/blobs/sha256/...  manifest, config, one layer
//
// A build spec pins a builder image by its manifest digest; [Resolve]
// checks the layout against the pin and the blobs against their digests.
//
// # Reproducible
//
// [WriteImage] turns a root folder into a one-layer linux/amd64 image whose
// manifest digest depends only on the names, contents, link targets and
// modes of the files, the [ImageConfig] and an epoch: [WriteLayer] writes
// a canonical tar (sorted, owner root, every mtime the epoch, no xattrs),
// uncompressed by default, and the JSON documents are compact encoding/json
// of fixed structs.
//
// [MakeBusybox] makes "busybox" from Debian's busybox-static package.
// [MakeMaven] makes "maven", a debootstrap of Debian bookworm with
// OpenJDK 17, Maven and Debian's offline Maven repository
// (/usr/share/maven-repo), normalised by [NormaliseRootfs] so that two
// makes with the same Debian package versions give the same digest. The
// Debian mirror is read from the machine's apt sources at run time
// ([DebianMirror]). [Check] runs a smoke test inside an image.
//
// [Make] is the entry point for 'pyrsia-build image make NAME --store DIR'.
package image

import (
	"context"
	"fmt"
	"io"
)

// Names are the images [Make] can make.
var Names = []string{"busybox", "maven", "maven-jdk21"}

// Make makes the image name ("busybox", "maven" or "maven-jdk21") in storeDir, writing
// progress to progress (nil discards it).
func Make(ctx context.Context, storeDir, name string, progress io.Writer) (Made, error) {
	switch name {
	case "busybox":
		return MakeBusybox(ctx, storeDir, progress)
	case "maven":
		return MakeMaven(ctx, storeDir, progress)
	case "maven-jdk21":
		return MakeMavenJDK21(ctx, storeDir, progress)
	}
	return Made{}, fmt.Errorf("no builder image %q: pyrsia-build makes %v", name, Names)
}
