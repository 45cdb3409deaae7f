package builder

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ResolveImage finds the builder image ref in the image store folder
// (IMAGES/<name>/, an OCI layout) and checks that its index names exactly
// the pinned manifest digest. It returns the layout folder.
func ResolveImage(store string, ref ImageRef) (string, error) {
	dir := filepath.Join(store, ref.Name)
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return "", fmt.Errorf("builder image %s: %w (make it with 'pyrsia-build image make %s --store %s')", ref.Name, err, ref.Name, store)
	}
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &idx); err != nil {
		return "", fmt.Errorf("builder image %s: index.json: %w", ref.Name, err)
	}
	for _, m := range idx.Manifests {
		if m.Digest == ref.Digest {
			return dir, nil
		}
	}
	return "", fmt.Errorf("builder image %s in %s does not hold %s, which the spec pins: remake the image, or fix the spec's builderImage.digest", ref.Name, store, ref.Digest)
}
