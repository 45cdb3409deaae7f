package node

import (
	"log/slog"
	"net/http"

	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/serve"
)

// newMavenFace returns the Maven face, mounted at serve.MavenPrefix.
func newMavenFace(idx *index.Index, content serve.Content, hint string, log *slog.Logger) http.Handler {
	return serve.NewMaven(serve.MavenOptions{Index: idx, Content: content, Logger: log, Hint: hint})
}
