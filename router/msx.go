package router

import (
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/rloc-router/rloc/slowpath/control"
)

// MSXAgreementInfo is one interconnect agreement as GET /v1/msx/agreements
// lists it (docs/interconnect.md): its configuration (never the key's
// secret), the state of both sides and its counters.
type MSXAgreementInfo struct {
	Name  string   `json:"name"`
	Peers []string `json:"peers"`
	Mode  string   `json:"mode"`
	Allow []string `json:"allow"`
	// Filters and PeerPrefixes list the prefixes, then the distinguished
	// names ("[iid]printer.example", "[iid]*.lab.example").
	Filters      []string          `json:"filters"`
	InstanceIDs  []uint32          `json:"instance_ids"`
	PeerPrefixes []string          `json:"peer_prefixes"`
	Rate         float64           `json:"rate"`
	Burst        int               `json:"burst"`
	KeyID        uint8             `json:"key_id"`
	Alg          string            `json:"alg"`
	Subscription uint32            `json:"subscription"`
	SubscribedBy int               `json:"subscribed_by"`
	Copy         int               `json:"copy"`
	Complete     bool              `json:"complete"`
	Pulling      bool              `json:"pulling"`
	LastHeard    *time.Time        `json:"last_heard,omitempty"`
	Counters     map[string]uint64 `json:"counters"`
}

// MSXAgreements lists the interconnect agreements; ok is false without an
// interconnect.
func (r *Router) MSXAgreements() ([]MSXAgreementInfo, bool) {
	if r.engine == nil {
		return nil, false
	}
	ags, ok := r.engine.MSXAgreements()
	if !ok {
		return nil, false
	}
	out := make([]MSXAgreementInfo, 0, len(ags))
	for i := range ags {
		out = append(out, msxInfo(&ags[i]))
	}
	return out, true
}

func msxInfo(a *control.MSXAgreement) MSXAgreementInfo {
	info := MSXAgreementInfo{Name: a.Name, Mode: a.Mode, Allow: a.Allow, InstanceIDs: a.InstanceIDs, Rate: a.Rate, Burst: a.Burst,
		KeyID: a.KeyID, Alg: a.Alg, Subscription: a.Subscription, SubscribedBy: a.SubscribedBy, Copy: a.Copy,
		Complete: a.Complete, Pulling: a.Pulling, Peers: []string{}, Filters: []string{}, PeerPrefixes: []string{},
		Counters: map[string]uint64{}}
	if info.InstanceIDs == nil {
		info.InstanceIDs = []uint32{}
	}
	for _, p := range a.Peers {
		info.Peers = append(info.Peers, p.String())
	}
	for _, p := range a.Filters {
		info.Filters = append(info.Filters, prefixString(p.IID, p.Prefix.String()))
	}
	for _, p := range a.PeerPrefixes {
		info.PeerPrefixes = append(info.PeerPrefixes, prefixString(p.IID, p.Prefix.String()))
	}
	// Distinguished names follow the prefixes in the same lists.
	for _, n := range a.Names {
		info.Filters = append(info.Filters, prefixString(n.IID, n.Name))
	}
	for _, n := range a.PeerNames {
		info.PeerPrefixes = append(info.PeerPrefixes, prefixString(n.IID, n.Name))
	}
	if !a.LastHeard.IsZero() {
		t := a.LastHeard
		info.LastHeard = &t
	}
	v := reflect.ValueOf(a.Stats)
	for i := range v.NumField() {
		info.Counters[snake(v.Type().Field(i).Name)] = v.Field(i).Uint()
	}
	return info
}

// prefixString writes an EID prefix with its instance-ID: "[iid]prefix".
func prefixString(iid uint32, p string) string {
	return "[" + strconv.FormatUint(uint64(iid), 10) + "]" + p
}

// snake turns a Go field name into its snake_case counter name.
func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (r *Router) apiMSXAgreements(w http.ResponseWriter, _ *http.Request) {
	l, ok := r.MSXAgreements()
	if !ok {
		apiError(w, http.StatusNotFound, errors.New("no mapping-system interconnect (msx.agreements empty)"))
		return
	}
	writeJSON(w, l)
}
