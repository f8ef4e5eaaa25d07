package router

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rloc-router/rloc/cache"
	"github.com/rloc-router/rloc/internal/buildinfo"
	"github.com/rloc-router/rloc/internal/render"
)

// The status page: a read-only HTML page for a browser on its own TCP
// listener (Config.Status; off by default, loopback unless status.remote),
// with the router's roles, interfaces, map-cache, database,
// registrations, multicast replication trees drawn as inline SVG, and
// counters.
//
//	GET /         the page
//	GET /events   a server-sent event per router event (its kind only),
//	              which makes the page fetch itself again (statusStreams
//	              at once); the mapping-system pictures' changes are
//	              events too (msWatch, status_events.go)
//
// Everything shown goes through html/template's escaping (the SVG through
// package render's); keys and secrets are never shown. The page has no
// JavaScript framework: a few lines of inline script (allowed by hash in
// the Content-Security-Policy, which allows nothing else) swap in a fresh
// copy of <main> after events and every 10 s; without script a meta
// refresh reloads it.

// statusRows bounds the rows of each listing on the page.
const statusRows = 200

// statusStreams bounds the event streams open at once (one per open page);
// more are refused with 503.
const statusStreams = 8

// validateStatus checks status.listen: host:port, on loopback unless
// status.remote.
func (c *Config) validateStatus() error {
	l := c.Status.Listen
	if l == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(l)
	if err != nil {
		return fmt.Errorf("status.listen: %q is not host:port", l)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("status.listen: %q: bad port", l)
	}
	if !c.Status.Remote && !loopbackHost(host) {
		return fmt.Errorf("status.listen: %q is not a loopback address and the page has no authentication: "+
			"listen on 127.0.0.1 or [::1], or set status.remote: true to serve it beyond this host", l)
	}
	return nil
}

// loopbackHost reports whether host names only loopback addresses.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// statusScript refreshes <main> after router events and every 10 s; it
// marks <html data-live="1"> (the page is live).
const statusScript = `(function () {
  document.documentElement.setAttribute("data-live", "1");
  if (!window.fetch || !window.DOMParser) return;
  var busy = false;
  function refresh() {
    if (busy) return;
    busy = true;
    fetch(location.pathname, {cache: "no-store"}).then(function (r) { return r.text(); }).then(function (t) {
      var m = new DOMParser().parseFromString(t, "text/html").querySelector("main");
      if (m) document.querySelector("main").replaceWith(m);
    }).catch(function () {}).then(function () { busy = false; });
  }
  if (window.EventSource) {
    var timer = null;
    new EventSource("events").onmessage = function () {
      if (!timer) timer = setTimeout(function () { timer = null; refresh(); }, 500);
    };
  }
  setInterval(refresh, 10000);
})();`

// statusStyle is the page's style sheet.
const statusStyle = `body{font-family:system-ui,sans-serif;margin:1.5em;color:#212529}
h1{font-size:1.4em;margin-bottom:.2em}h2{font-size:1.1em;margin-top:1.6em;border-bottom:1px solid #dee2e6}
table{border-collapse:collapse;font-size:.9em}th,td{text-align:left;padding:.2em .8em .2em 0;vertical-align:top}
th{border-bottom:1px solid #adb5bd}td.n{text-align:right;font-variant-numeric:tabular-nums}
.muted{color:#6c757d}.tag{display:inline-block;background:#e9ecef;border-radius:4px;padding:0 .4em;margin-right:.3em}
.counters{display:flex;flex-wrap:wrap;gap:2em;align-items:flex-start}.tree{margin:1em 0;overflow-x:auto}`

// statusCSP allows the page's own style and script (by hash) and
// connections back to it, and nothing else.
func statusCSP() string {
	h := func(s string) string {
		sum := sha256.Sum256([]byte(s))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}
	return "default-src 'none'; style-src " + h(statusStyle) + "; script-src " + h(statusScript) +
		"; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		d := time.Until(t).Round(time.Second)
		if d < 0 {
			return "expired"
		}
		return d.String()
	},
	"join": strings.Join,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>rlocd {{.Name}}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<noscript><meta http-equiv="refresh" content="10"></noscript>
<style>{{.Style}}</style>
</head><body>
<main>
<h1 id="name">rlocd {{.Name}}</h1>
<p class="muted" id="version">{{.Version}} · up {{.Uptime}} · {{.Now}}</p>

<h2>Roles and interfaces</h2>
<p id="roles">{{range .Roles}}<span class="tag">{{.}}</span>{{else}}none{{end}}</p>
{{if .RLOCs}}<p>RLOCs: <span id="rlocs">{{join .RLOCs ", "}}</span></p>{{end}}
{{if .Interfaces}}<table id="interfaces"><tr><th>interface</th><th>side</th><th>instance</th><th>queues</th></tr>
{{range .Interfaces}}<tr><td>{{.Name}}</td><td>{{.Side}}</td><td class="n">{{.IID}}</td><td class="n">{{.Queues}}</td></tr>
{{end}}</table>{{end}}

<h2>Map-cache</h2>
<p id="map-cache-summary">{{.Cache.Entries}} entries: {{.Cache.Negative}} negative, {{.Cache.Static}} static, {{.Cache.Multicast}} multicast</p>
{{if .MapCache}}<table id="map-cache"><tr><th>instance</th><th>EID</th><th>RLOCs</th><th>TTL (min)</th><th>expires in</th></tr>
{{range .MapCache}}<tr><td class="n">{{.IID}}</td><td>{{.EID}}</td><td>{{if .Negative}}negative: {{.Action}}{{else}}{{range .RLOCs}}{{.Addr}} {{.Priority}}/{{.Weight}}{{if not .Reachable}} (down){{end}}<br>{{end}}{{end}}</td><td class="n">{{.TTL}}</td><td>{{if .Static}}static{{else}}{{ago .Expires}}{{end}}</td></tr>
{{end}}</table>{{if .MapCacheMore}}<p class="muted">{{.MapCacheMore}} more: rlocctl map-cache lists them all.</p>{{end}}{{end}}

{{if .Database}}<h2>Database (ETR)</h2>
<table id="database"><tr><th>instance</th><th>EID</th><th>RLOCs</th></tr>
{{range .Database}}<tr><td class="n">{{.IID}}</td><td>{{.EID}}</td><td>{{range .RLOCs}}{{.Addr}} {{.Priority}}/{{.Weight}}<br>{{end}}</td></tr>
{{end}}</table>{{end}}

{{if .MapServer}}<h2>Registrations (Map-Server)</h2>
<p id="registrations-summary">{{len .Registrations}}{{if .RegistrationsMore}}+{{.RegistrationsMore}}{{end}} registrations</p>
{{if .Registrations}}<table id="registrations"><tr><th>site</th><th>instance</th><th>EID</th><th>RLOCs</th><th>from</th><th>expires in</th></tr>
{{range .Registrations}}<tr><td>{{.Site}}</td><td class="n">{{.IID}}</td><td>{{.EID}}</td><td>{{join .RLOCs ", "}}</td><td>{{.Source}}</td><td>{{ago .Expires}}</td></tr>
{{end}}</table>{{if .RegistrationsMore}}<p class="muted">{{.RegistrationsMore}} more: rlocctl registrations lists them all.</p>{{end}}{{end}}{{end}}

{{if .Multicast}}<h2>Multicast replication trees</h2>
<div id="trees">{{range .Trees}}<div class="tree">{{.}}</div>
{{else}}<p>No replication tree known.</p>{{end}}</div>{{end}}

{{if .MappingSystem}}<h2>Mapping system</h2>
<div id="mapping-system">{{range .MappingSystem}}<div class="tree">{{.}}</div>
{{end}}</div>{{end}}

<h2>Counters</h2>
<div class="counters" id="counters">{{range .Counters}}<table><tr><th colspan="2">{{.Title}}</th></tr>
{{range .Rows}}<tr><td>{{.Name}}</td><td class="n">{{.Value}}</td></tr>
{{end}}</table>
{{end}}</div>
</main>
<script>{{.Script}}</script>
</body></html>
`))

// counterRow is one counter on the page.
type counterRow struct{ Name, Value string }

// counterTable is a group of counters.
type counterTable struct {
	Title string
	Rows  []counterRow
}

// statusData is what the page shows.
type statusData struct {
	Name, Version, Uptime, Now string
	Roles, RLOCs               []string
	Interfaces                 []Interface
	Cache                      struct{ Entries, Negative, Static, Multicast int }
	MapCache                   []MapCacheEntry
	MapCacheMore               int
	Database                   []DatabaseMapping
	MapServer                  bool
	Registrations              []RegistrationInfo
	RegistrationsMore          int
	Multicast                  bool
	Trees                      []template.HTML
	MappingSystem              []template.HTML
	Counters                   []counterTable
	Style                      template.CSS
	Script                     template.JS
}

// names names the configured roles.
func (r Roles) names() []string {
	var out []string
	for _, x := range []struct {
		on   bool
		name string
	}{{r.ITR, "ITR"}, {r.ETR, "ETR"}, {r.PITR, "PITR"}, {r.PETR, "PETR"}, {r.RTR, "RTR"},
		{r.MapServer, "Map-Server"}, {r.MapResolver, "Map-Resolver"}, {r.DDTNode, "DDT node"}} {
		if x.on {
			out = append(out, x.name)
		}
	}
	return out
}

// counterTables flattens v's JSON form into tables: one per object of
// scalars (named by its key path), one row per number.
func counterTables(title string, v any) []counterTable {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	var out []counterTable
	var walk func(title string, v any)
	walk = func(title string, v any) {
		switch x := v.(type) {
		case map[string]any:
			t := counterTable{Title: title}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for _, k := range keys {
				switch y := x[k].(type) {
				case map[string]any, []any:
					walk(strings.TrimPrefix(title+" "+k, " "), y)
				case float64:
					t.Rows = append(t.Rows, counterRow{k, strconv.FormatFloat(y, 'f', -1, 64)})
				case string:
					t.Rows = append(t.Rows, counterRow{k, y})
				}
			}
			if len(t.Rows) > 0 {
				out = append(out, t)
			}
		case []any:
			for i, y := range x {
				name := title + " " + strconv.Itoa(i)
				if m, ok := y.(map[string]any); ok {
					if s, ok := m["type"].(string); ok {
						name = title + " " + s // named by its type, not a row
						delete(m, "type")
					}
				}
				walk(name, y)
			}
		}
	}
	walk(title, m)
	return out
}

// statusData gathers the page's content.
func (r *Router) statusData() statusData {
	cfg := r.Config()
	st := r.Stats()
	d := statusData{Name: cfg.Name, Version: buildinfo.Read("rlocd").String(), Uptime: st.Uptime,
		Now: time.Now().UTC().Format(time.RFC3339), Roles: cfg.Roles.names(), Interfaces: cfg.Interfaces,
		MapServer: cfg.Roles.MapServer, Multicast: cfg.Multicast.Enabled,
		Style: template.CSS(statusStyle), Script: template.JS(statusScript)}
	d.Version, _, _ = strings.Cut(d.Version, "\n")
	for _, a := range cfg.RLOCs {
		d.RLOCs = append(d.RLOCs, a.String())
	}
	d.Cache.Entries, d.Cache.Negative, d.Cache.Static, d.Cache.Multicast = st.Cache.Entries, st.Cache.Negative, st.Cache.Static, st.Cache.Multicast
	// A big map-cache is not copied for the page: its first statusRows
	// entries in walk order are shown, sorted.
	r.cache.Walk(func(e *cache.Entry) bool {
		d.MapCache = append(d.MapCache, r.entryInfo(e))
		return len(d.MapCache) < statusRows
	})
	slices.SortFunc(d.MapCache, func(a, b MapCacheEntry) int {
		if a.IID != b.IID {
			return cmp.Compare(a.IID, b.IID)
		}
		return strings.Compare(a.EID, b.EID)
	})
	d.MapCacheMore = max(0, st.Cache.Entries-len(d.MapCache))
	if cfg.Roles.ETR {
		d.Database = r.Database()
	}
	if cfg.Roles.MapServer {
		regs, next, _ := r.RegistrationsPage("", statusRows)
		if next != "" {
			d.RegistrationsMore = max(1, int(st.Control["registrations"])-len(regs))
		}
		d.Registrations = regs
	}
	if d.Multicast {
		for _, v := range r.McastTrees() {
			var b bytes.Buffer
			if render.SVG(&b, "replication tree "+v.SG(), []render.Graph{v.Picture()}) == nil {
				// render.SVG escapes every text and attribute it writes.
				d.Trees = append(d.Trees, template.HTML(b.String()))
			}
		}
	}
	// The mapping system as this router sees it: a DDT node's delegations,
	// the tree a DDT Map-Resolver has learned, an ALT router's neighbours
	// and routes, the interconnect's agreements and peers.
	var ms []render.Graph
	if l, ok := r.DDTDelegations(); ok {
		ms = append(ms, DDTDelegationsPicture(l))
	}
	if l, ok := r.DDTReferrals(); ok {
		ms = append(ms, DDTReferralsPicture(l))
	}
	if v, err := r.ALT(); err == nil {
		ms = append(ms, ALTPicture(v))
	}
	if l, ok := r.MSXAgreements(); ok {
		ms = append(ms, MSXPicture(l))
	}
	for _, g := range ms {
		var b bytes.Buffer
		if render.SVG(&b, g.Title, []render.Graph{g}) == nil {
			d.MappingSystem = append(d.MappingSystem, template.HTML(b.String())) // escaped by render.SVG
		}
	}
	d.Counters = counterTables("", struct {
		Fastpath map[string]uint64 `json:"fast path,omitempty"`
		Drops    map[string]uint64 `json:"drops,omitempty"`
		Control  map[string]uint64 `json:"control plane,omitempty"`
		Messages []MsgCount        `json:"messages,omitempty"`
		Cache    any               `json:"map-cache"`
		Latency  map[string]string `json:"resolution latency,omitempty"`
	}{st.Fastpath, st.Drops, st.Control, st.Messages, st.Cache, st.LatencyMS})
	if d.Multicast && r.engine != nil {
		d.Counters = append(d.Counters, counterTables("multicast", r.engine.McastStats())...)
	}
	return d
}

// startStatus serves the status page on Config.Status.Listen.
func (r *Router) startStatus() error {
	ln, err := net.Listen("tcp", r.cfg.Status.Listen)
	if err != nil {
		return fmt.Errorf("status.listen: %w", err)
	}
	csp := statusCSP()
	secure := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, req *http.Request) {
			w.Header().Set("Content-Security-Policy", csp)
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.Header().Set("Referrer-Policy", "no-referrer")
			w.Header().Set("Cache-Control", "no-store")
			h(w, req)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", secure(r.statusPage))
	streams := make(chan struct{}, statusStreams)
	mux.HandleFunc("GET /events", secure(func(w http.ResponseWriter, req *http.Request) {
		select {
		case streams <- struct{}{}:
			defer func() { <-streams }()
			r.statusEvents(w, req)
		default:
			http.Error(w, "too many open status pages", http.StatusServiceUnavailable)
		}
	}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	r.closers = append(r.closers, srv.Close)
	r.statusAddr = ln.Addr().String()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// StatusAddr is the address the status page listens on ("" when off).
func (r *Router) StatusAddr() string { return r.statusAddr }

func (r *Router) statusPage(w http.ResponseWriter, _ *http.Request) {
	var b bytes.Buffer
	if err := statusTmpl.Execute(&b, r.statusData()); err != nil {
		http.Error(w, "status page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(b.Bytes())
}

// statusEvents streams one server-sent event per router event, carrying
// only the event's kind.
func (r *Router) statusEvents(w http.ResponseWriter, req *http.Request) {
	r.streamEvents(w, req, "text/event-stream", func(ev Event) error {
		_, err := fmt.Fprintf(w, "data: %s\n\n", ev.Kind)
		return err
	})
}
