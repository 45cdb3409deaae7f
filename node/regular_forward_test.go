package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/attest"
)

// A regular node passes a request signed by its requester on to a build
// node: the network builds it, the events come back through the regular
// node, which then has the entry and its proof. An unsigned spec and a
// requester the policy does not admit are refused with what to do.
func TestRegularPassesPublishOn(t *testing.T) {
	// The build node's keepalives hold the stream through the build: the
	// regular node would give up after 3 of them without a byte.
	old := forwardKeepalive
	forwardKeepalive = 200 * time.Millisecond
	t.Cleanup(func() { forwardKeepalive = old })
	c := servingCluster(t, 3)
	ctx := c.ctx()
	c.leader(ctx)
	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 1, "")

	post := func(ct string, body []byte) (int, []byte) {
		resp, err := http.Post(reg.url+"/v1/requests", ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf bytes.Buffer
		buf.ReadFrom(resp.Body)
		return resp.StatusCode, buf.Bytes()
	}
	resp, err := http.Post(reg.url+"/v1/publish", "application/yaml", bytes.NewReader(ociSpec(6)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(buf.String(), "publish --key") {
		t.Errorf("an unsigned spec: %d %s, want 415 naming publish --key", resp.StatusCode, buf.String())
	}
	kp, err := attest.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := attest.LoadSigner(kp.Private, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SignRequest(c.policy, ociSpec(6), stranger)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := post("application/json", b); code != http.StatusForbidden || !strings.Contains(string(body), "refused the request") || !strings.Contains(string(body), "not one of the policy") {
		t.Errorf("a requester the policy does not list: %d %s, want the build node's refusal", code, body)
	}

	// node-c's key may request builds (the policy lists no requesters:
	// its build nodes may).
	b, err = SignRequest(c.policy, ociSpec(6), c.nodes[2].keys.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	code, body := post("application/json", b)
	var acc struct{ InputDigest string }
	if code != http.StatusAccepted || json.Unmarshal(body, &acc) != nil || acc.InputDigest == "" {
		t.Fatalf("a signed request: %d %s", code, body)
	}
	resp, err = http.Get(reg.url + "/v1/publish/" + acc.InputDigest + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var evs []Event
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if len(evs) == 0 || lastEvent(evs).Type != EventFinal {
		t.Fatalf("events through the regular node: %v, want votes then final", evs)
	}
	votes := 0
	for _, ev := range evs {
		if ev.Type == EventVote {
			votes++
		}
	}
	if votes < 2 {
		t.Errorf("events: %v, want the votes of a majority", evs)
	}
	// Final on the regular node means it has the entry and its proof.
	if _, ok := reg.r.Index().ByInputDigest(acc.InputDigest); !ok {
		t.Error("final, but the regular node has not indexed the entry")
	}
	reg.proof(acc.InputDigest)
}
