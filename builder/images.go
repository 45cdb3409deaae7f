package builder

import "github.com/pyrsia/pyrsia-build/builder/image"

// ResolveImage finds the builder image ref in the image store folder
// (IMAGES/<name>/, an OCI layout) and checks that its index names exactly
// the pinned manifest digest. It returns the layout folder.
func ResolveImage(store string, ref ImageRef) (string, error) {
	return image.ResolveLayout(store, ref.Name, ref.Digest)
}
