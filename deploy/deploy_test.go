package deploy

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/rloc-router/rloc/fastpath"
	"github.com/rloc-router/rloc/internal/testkit"
	"github.com/rloc-router/rloc/ring/xsk"
)

// need returns the path of tool; a missing one is a missing
// prerequisite (testkit's policy: fail under CI, skip otherwise).
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	testkit.Require(t, tool+" (scripts/deps.sh "+tool+" installs it)", err)
	return p
}

// query is one PromQL expression and where it comes from.
type query struct {
	where, expr string
}

// ruleQueries returns the expressions of the alerting rules.
func ruleQueries(t *testing.T) []query {
	t.Helper()
	b, err := os.ReadFile("prometheus/rloc-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct{ Alert, Expr string }
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var qs []query
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{"rule " + r.Alert, r.Expr})
		}
	}
	if len(qs) == 0 {
		t.Fatal("no rules")
	}
	return qs
}

// dashboard is the part of a Grafana dashboard the tests read.
type dashboard struct {
	UID, Title string
	Panels     []struct {
		ID      int
		Type    string
		Title   string
		GridPos struct{ X, Y, W, H int }
		Targets []struct {
			RefID string
			Expr  string
		}
	}
	Templating struct {
		List []struct {
			Name, Type string
			Query      any
		}
	}
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile("grafana/rloc.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana/rloc.json: %v", err)
	}
	return d
}

// dashboardQueries returns the dashboard's expressions with Grafana's
// variables replaced by what Prometheus sees.
func dashboardQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, p := range readDashboard(t).Panels {
		for _, tg := range p.Targets {
			e := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(tg.Expr)
			qs = append(qs, query{fmt.Sprintf("panel %q %s", p.Title, tg.RefID), e})
		}
	}
	return qs
}

func TestDashboardShape(t *testing.T) {
	d := readDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q", d.UID, d.Title)
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid %+v", p.Title, p.GridPos)
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		queries += len(p.Targets)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	if !slices.Contains(vars, "datasource") || !slices.Contains(vars, "instance") || queries < 10 {
		t.Errorf("variables %q, %d queries", vars, queries)
	}
}

// TestPromtool: the rules pass promtool check and their unit tests, and the
// dashboard's queries parse (promtool checks them as recording rules).
func TestPromtool(t *testing.T) {
	promtool := need(t, "promtool")
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("check", "rules", "rloc-alerts.yml")
	run("test", "rules", "rloc-alerts_test.yml")

	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for i, q := range dashboardQueries(t) {
		rules = append(rules, rule{fmt.Sprintf("dashboard:query_%d", i), q.expr})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("the dashboard's queries do not parse: %v\n%s", err, out)
	}
	// The check does fail on a bad query.
	if err := os.WriteFile(file, []byte("groups: [{name: x, rules: [{record: 'x:y', expr: 'sum(rate(rloc_x[5m])'}]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err == nil {
		t.Errorf("promtool accepted a broken query:\n%s", out)
	}
}

// exported is what rlocd's /metrics can contain: metric names (histograms
// with their _bucket, _sum and _count series) and the values of each label.
type exported struct {
	names  map[string]bool
	values map[string]bool // label values, any label
}

// exportedMetrics reads the metric definitions from router/metrics.go (the
// descriptors made with its d(name, help, labels...) helper) and the label
// values from the literals there and from package fastpath's counter names.
func exportedMetrics(t *testing.T) exported {
	t.Helper()
	src := filepath.Join("..", "router", "metrics.go")
	f, err := parser.ParseFile(token.NewFileSet(), src, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := exported{names: map[string]bool{}, values: map[string]bool{}}
	field := map[string]string{} // collector field → metric name
	var histograms []string      // collector fields exported as histograms
	metricName := func(s string) string { return strings.ReplaceAll(s, "-", "_") }
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.KeyValueExpr:
			if call, ok := n.Value.(*ast.CallExpr); ok {
				if fn, ok := call.Fun.(*ast.Ident); ok && fn.Name == "d" && len(call.Args) > 0 {
					if lit, ok := call.Args[0].(*ast.BasicLit); ok {
						name, _ := strconv.Unquote(lit.Value)
						if k, ok := n.Key.(*ast.Ident); ok {
							field[k.Name] = "rloc_" + name
						}
						e.names["rloc_"+name] = true
					}
				}
			}
		case *ast.CallExpr:
			if fn, ok := n.Fun.(*ast.Ident); ok && fn.Name == "histogram" && len(n.Args) > 0 {
				if sel, ok := n.Args[0].(*ast.SelectorExpr); ok {
					histograms = append(histograms, sel.Sel.Name)
				}
			}
		case *ast.BasicLit:
			if n.Kind == token.STRING {
				s, _ := strconv.Unquote(n.Value)
				e.values[metricName(s)] = true
			}
		}
		return true
	})
	if len(e.names) < 5 || len(histograms) == 0 {
		t.Fatalf("%s: found metrics %v and histograms %v; has the way it defines them changed? Update exportedMetrics", src, e.names, histograms)
	}
	for _, h := range histograms {
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			e.names[field[h]+suffix] = true
		}
	}
	// The fast path's label values: counter, drop-reason and extra names.
	for i, c := 0, fastpath.Counter(0); i < 256 && c.String() != "counter-?"; i, c = i+1, c+1 {
		e.values[metricName(c.String())] = true
	}
	for r := fastpath.DropReason(0); r < fastpath.NumDropReasons; r++ {
		e.values[metricName(r.String())] = true
	}
	for x := fastpath.Extra(0); x < fastpath.NumExtra; x++ {
		e.values[metricName(x.String())] = true
	}
	// The steering programs' actions (rloc_xdp_steering_total).
	for k := xsk.Stat(0); k < xsk.NumStats; k++ {
		e.values[k.String()] = true
	}
	// Message types are named in router/mgmt.go (msgTypeNames).
	b, err := os.ReadFile(filepath.Join("..", "router", "mgmt.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"(map-[a-z]+|ecm)"`).FindAllStringSubmatch(string(b), -1) {
		e.values[metricName(m[1])] = true
	}
	return e
}

var (
	quoted  = regexp.MustCompile(`"[^"]*"`)
	rlocRef = regexp.MustCompile(`\brloc_[a-z0-9_]+\b`)
	matcher = regexp.MustCompile(`\b([a-z_]+)\s*(=~|!~|=|!=)\s*"([^"]*)"`)
	plain   = regexp.MustCompile(`^[a-z0-9_]+$`)
)

// TestReferencedMetricsExported: every rloc_ metric and every label value
// the rules and the dashboard select on is one rlocd exports.
func TestReferencedMetricsExported(t *testing.T) {
	e := exportedMetrics(t)
	qs := append(ruleQueries(t), dashboardQueries(t)...)
	used := map[string]bool{}
	for _, q := range qs {
		for _, name := range rlocRef.FindAllString(quoted.ReplaceAllString(q.expr, `""`), -1) {
			used[name] = true
			if !e.names[name] {
				t.Errorf("%s: %s is not a metric rlocd exports", q.where, name)
			}
		}
		for _, m := range matcher.FindAllStringSubmatch(q.expr, -1) {
			label, op, value := m[1], m[2], m[3]
			if label == "instance" || label == "job" || label == "le" {
				continue
			}
			alts := []string{value}
			if op == "=~" || op == "!~" {
				alts = strings.Split(value, "|")
			}
			for _, v := range alts {
				if !plain.MatchString(v) || !e.values[v] {
					t.Errorf("%s: %s%s%q: %q is not a value rlocd exports", q.where, label, op, value, v)
				}
			}
		}
	}
	// The alerts cover what docs/operating.md promises.
	for _, name := range []string{"rloc_control_messages_total", "rloc_control_events_total", "rloc_fastpath_dropped_total",
		"rloc_fastpath_extra_total", "rloc_resolution_latency_seconds_bucket"} {
		if !used[name] {
			t.Errorf("no rule or panel uses %s", name)
		}
	}
}

// TestMetricCheckCatchesTypos: the name and label checks reject what is not
// exported.
func TestMetricCheckCatchesTypos(t *testing.T) {
	e := exportedMetrics(t)
	if e.names["rloc_fastpath_droped_total"] || !e.names["rloc_fastpath_dropped_total"] ||
		!e.names["rloc_resolution_latency_seconds_count"] || e.names["rloc_registrations_bucket"] {
		t.Errorf("names: %v", e.names)
	}
	if !e.values["hold_full_eid"] || !e.values["tx_full"] || !e.values["rloc_down"] || !e.values["map_register"] ||
		!e.values["pool_empty"] || e.values["hold_ful_eid"] {
		t.Errorf("label values: %v", e.values)
	}
}
