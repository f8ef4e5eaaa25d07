// Package deploy holds no code: it is the home of the operator artefacts
// that go beside a running rlocd, and of the tests that keep them true:
//
//   - grafana/rloc.json: a Grafana dashboard over rloc's metrics;
//   - prometheus/rloc-alerts.yml: Prometheus alerting rules, with promtool
//     unit tests in prometheus/rloc-alerts_test.yml.
//
// deploy_test.go runs promtool on the rules and the dashboard's queries and
// checks that every metric and label value they name is one rlocd exports
// (router/metrics.go). docs/operating.md explains how to install them.
package deploy
