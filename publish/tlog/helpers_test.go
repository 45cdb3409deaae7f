package tlog

import "context"

// publishCommit publishes a candidate and commits it as it is (a log
// without cosigners).
func publishCommit(l *Log, ctx context.Context) (*Checkpoint, error) {
	cp, err := l.Publish(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.Commit(cp.Note); err != nil {
		return nil, err
	}
	return l.Checkpoint(), nil
}
