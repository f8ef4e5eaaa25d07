package configdoc

import (
	"reflect"
	"strings"
	"testing"
)

func TestDocDefault(t *testing.T) {
	for doc, want := range map[string]string{
		"Queues is the number of queues (default 1); every interface":              "1",
		"XDPMode is driver (default) or generic.":                                  "driver",
		"RegisterInterval is the period (0: 60 s, RFC 9301 §8.2).":                 "60 s",
		"Burst is the bucket size; 0 means max(1, PerSecond).":                     "max(1, PerSecond)",
		"RingSize is the size (a power of two, 64..16384; 0 means 2048).":          "2048",
		"PerSecond is the rate; 0 disables rate limiting.":                         "0: disables rate limiting",
		`Socket is the path ("" disables it).`:                                     `"": disables it`,
		"RLOC is this router's RLOC; invalid takes the first IPv4 RLOC, else one.": "absent: the first IPv4 RLOC, else one",
		"Nonce sets the N bit.":                                                    "",
	} {
		if got := docDefault(doc); got != want {
			t.Errorf("docDefault(%q) = %q, want %q", doc, got, want)
		}
	}
}

func TestPlural(t *testing.T) {
	for in, want := range map[string]string{
		"address": "addresses", "address[:port]": "addresses[:port]", "prefix": "prefixes",
		"integer": "integers", `underlay group ("G" or "S,G")`: `underlay groups ("G" or "S,G")`, "roles": "roles",
	} {
		if got := plural(in); got != want {
			t.Errorf("plural(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRenameFields(t *testing.T) {
	names := map[string]string{"RingSize": "ring_size", "Frames": "frames", "RLOCs": "rlocs"}
	got := renameFields("Frames is at least RingSize, one per RLOCs.", "Frames", names)
	if want := "`frames` is at least `ring_size`, one per RLOCs."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// testConfig is a schema for TestKeys.
type testConfig struct {
	// Name names it.
	Name string `mapstructure:"name"`
	// Mode is a or b (default a).
	Mode testMode `mapstructure:"mode"`
	// Items are items.
	Items []testItem `mapstructure:"items"`
	// Skipped is not in the file.
	Skipped int `mapstructure:"-"`
}

// testItem is one item.
type testItem struct {
	Embedded `mapstructure:",squash"`
	// Low and High bound it.
	Low  uint8 `mapstructure:"low"`
	High uint8 `mapstructure:"high"`
}

// Embedded is squashed into testItem (exported, as mapstructure
// needs).
type Embedded struct {
	// Tags label it.
	Tags []string `mapstructure:"tags"`
}

// testMode is an enumeration.
type testMode string

// The modes.
const (
	testModeA testMode = "a"
	testModeB testMode = "b"
)

// TestKeys walks a small schema from this package's source.
func TestKeys(t *testing.T) {
	src, err := Open("../..")
	if err != nil {
		t.Fatal(err)
	}
	src.Tests = true // the schema is declared in this file
	s := &Schema{Root: reflect.TypeFor[testConfig](), Source: src,
		Reload: func(p string) string {
			if strings.HasPrefix(p, "items") {
				return "yes"
			}
			return "no"
		}}
	keys, err := s.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if ex := keys[1].Example; ex != string(testModeA) || !strings.Contains(keys[1].Allowed, string(testModeB)) {
		t.Errorf("mode: example %q, allowed %q", ex, keys[1].Allowed)
	}
	var got []string
	for _, k := range keys {
		got = append(got, strings.Join([]string{k.Path, k.Type, k.Default, k.Allowed, k.Reload, k.Doc}, "|"))
	}
	want := []string{
		"name|string|\"\"||no|`name` names it.",
		"mode|string|a|a, b|no|`mode` is a or b (default a).",
		"items|list of sections|[]||yes|`items` are items.",
		"items[].tags|list of strings|[]||yes|`tags` label it.",
		"items[].low|integer|0|0..255|yes|Low and High bound it.",
		"items[].high|integer|0|0..255|yes|Low and High bound it.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("keys:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
