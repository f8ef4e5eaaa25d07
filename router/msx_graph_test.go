package router

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rloc-router/rloc/internal/render"
)

// TestMSXPicture: one box per agreement with its mode, primitives, shared
// space and copy; the peers under it, dashed until heard from.
func TestMSXPicture(t *testing.T) {
	heard := time.Now()
	g := MSXPicture([]MSXAgreementInfo{
		{Name: "d2", Mode: "copy", Allow: []string{"bulk", "subscribe"}, Filters: []string{"[0]10.1.0.0/16"}, InstanceIDs: []uint32{7},
			Peers: []string{"192.0.2.20:4342", "192.0.2.21:4342"}, Copy: 42, Complete: true, Subscription: 3, LastHeard: &heard},
		{Name: "d3", Mode: "invoke", Allow: []string{"invocation"}, Peers: []string{"192.0.2.30:4342"}},
	})
	want := []string{"a/d2 -> p/d2/192.0.2.20:4342", "a/d2 -> p/d2/192.0.2.21:4342", "a/d3 -> p/d3/192.0.2.30:4342", "self -> a/d2", "self -> a/d3"}
	if got := edgesOf(g); !slices.Equal(got, want) {
		t.Errorf("edges %q, want %q", got, want)
	}
	class, label := map[string]string{}, map[string]string{}
	for _, n := range g.Nodes {
		class[n.ID], label[n.ID] = n.Class, n.Label
	}
	if class["p/d2/192.0.2.20:4342"] != render.ClassLeaf || class["p/d3/192.0.2.30:4342"] != render.ClassFailed {
		t.Errorf("classes %v", class)
	}
	for id, w := range map[string]string{"a/d2": "mode copy\npeer may: bulk, subscribe\nshares [0]10.1.0.0/16 [7]*\ncopy: 42 mappings (complete)\nsubscribed: ours true, theirs 0",
		"a/d3": "mode invoke\npeer may: invocation"} {
		if !strings.Contains(label[id], w) {
			t.Errorf("%s label %q, want %q in it", id, label[id], w)
		}
	}
}
