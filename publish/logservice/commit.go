package logservice

import "github.com/pyrsia/pyrsia-build/publish/tlog"

// commit stores signed, the cosigned note of the log's latest checkpoint,
// as the log's checkpoint.
func commit(l *tlog.Log, signed []byte) error { return l.Commit(signed) }
