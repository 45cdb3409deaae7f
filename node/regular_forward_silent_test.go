package node

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// A build node that took a forwarded request and then sends nothing (or
// only keepalives, past its deadline) holds no stream, goroutine or client
// of the regular node for ever: the regular node gives up after
// 3*forwardKeepalive without a byte, and after the build node's Until
// plus forwardMargin, resets the stream, and ends its subscribers' round
// with a verdict naming the build node and why.
func TestRegularForwardGivesUpOnASilentBuildNode(t *testing.T) {
	oldKeep, oldMargin := forwardKeepalive, forwardMargin
	forwardKeepalive, forwardMargin = 50*time.Millisecond, 300*time.Millisecond
	t.Cleanup(func() { forwardKeepalive, forwardMargin = oldKeep, oldMargin })

	c, nw, req := forwardFixture(t)
	for _, tc := range []struct {
		name      string
		keepalive bool // the build node sends empty lines, but no event
		want      string
	}{
		{"silent", false, "sent nothing for 150ms"},
		{"keepalives past the deadline", true, "did not end it by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ended := make(chan error, 1) // the build node's stream ended, with the read's error
			h := c.buildNodeHost(t, 0, func(st network.Stream) {
				br := bufio.NewReader(st)
				line, err := readLine(br, quorum.MaxRequestSize+1)
				if err != nil {
					st.Reset()
					return
				}
				r, _ := quorum.ParseBuildRequest(line)
				until := time.Now()
				json.NewEncoder(st).Encode(forwardAnswer{InputDigest: r.InputDigest, Until: &until})
				if tc.keepalive {
					go func() {
						for {
							time.Sleep(10 * time.Millisecond)
							if _, err := st.Write([]byte("\n")); err != nil {
								return
							}
						}
					}()
				}
				_, err = br.ReadByte() // blocks until the regular node lets go
				ended <- err
			})
			reg := newHost(t)
			boot := []peer.AddrInfo{{ID: h.ID(), Addrs: h.Addrs()}}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := reg.Connect(ctx, boot[0]); err != nil {
				t.Fatal(err)
			}
			f := newForwarder(reg, nw, boot, slog.New(slog.DiscardHandler))
			_, ch, unsubscribe := f.events.subscribe(req.InputDigest)
			defer unsubscribe()
			input, err := f.forward(ctx, req)
			if err != nil || input != req.InputDigest {
				t.Fatalf("forward: %q, %v", input, err)
			}
			var ev Event
			select {
			case ev = <-ch:
			case <-ctx.Done():
				t.Fatal("the regular node still waits for the silent build node")
			}
			if ev.Type != EventVerdict || ev.Verdict == nil || !strings.Contains(ev.Verdict.Text, "build node "+c.nodes[0].name) ||
				!strings.Contains(ev.Verdict.Text, tc.want) || len(ev.Verdict.Silent) != 1 || ev.Verdict.Silent[0] != c.nodes[0].name {
				t.Errorf("the event to the client: %+v (verdict %+v), want a verdict naming %s and %q", ev, ev.Verdict, c.nodes[0].name, tc.want)
			}
			if roundEnds(ev) != true {
				t.Errorf("%s does not end the client's event stream", ev.Type)
			}
			if st := f.status(input); st.State != "unknown" {
				t.Errorf("the round's status after giving up: %+v, want it forgotten", st)
			}
			select {
			case err := <-ended:
				if err == nil {
					t.Error("the build node read a byte: want the stream reset")
				}
			case <-ctx.Done():
				t.Fatal("the regular node holds the stream after giving up")
			}
		})
	}
}
