package main

// docs/config.md, the configuration reference, is generated from the
// schema (router.Config and the log section, their doc comments and the
// parsers of decode.go) by TestConfigReference, which fails when the file
// is stale.
//go:generate go test -run ^TestConfigReference$ -update .
